//! Reading an answer: which failures deserve another attempt, and a body read with a cap.

use std::error::Error as _;
use std::io;

use reqwest::StatusCode;

/// 408, 429 and 5xx: worth another attempt.
pub fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429) || status.is_server_error()
}

/// Why an attempt failed below HTTP (every such failure is worth another attempt): a short
/// kind for logs ("timeout", "connect", "reset", "transport") and the words of an error's
/// cause ("connection error", ...).
pub fn transport_failure(error: &reqwest::Error) -> (&'static str, &'static str) {
    if error.is_timeout() {
        return ("timeout", "timeout");
    }
    if error.is_connect() {
        return ("connect", "connection error");
    }
    let mut source = error.source();
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<io::Error>()
            && matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            )
        {
            return ("reset", "connection reset");
        }
        source = inner.source();
    }
    ("transport", "connection error")
}

/// Most of an answer read: the APIs' answers are a few KiB. A longer one is cut here, so that a
/// misbehaving server or proxy cannot make the service hold megabytes per call; cut, it no
/// longer reads as JSON and is reported as an unexpected answer.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The body of `response`, at most [`MAX_ANSWER_BYTES`] of it.
pub async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER_BYTES - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(
                is_transient_status(StatusCode::from_u16(code).unwrap_or_default()),
                "{code}"
            );
        }
        for code in [200, 201, 400, 401, 403, 404, 409, 422] {
            assert!(
                !is_transient_status(StatusCode::from_u16(code).unwrap_or_default()),
                "{code}"
            );
        }
    }
}
