//! One attempt at a call: the request sent and its answer read within a time budget, and what
//! came of it. Which answers deserve another attempt is each API's to say.

use std::time::Duration;

use chrono::Utc;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

use crate::{human, read_capped, retry_after, transport_failure};

/// A final answer: a status that is not retried, with its body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// At most [`MAX_ANSWER_BYTES`](crate::MAX_ANSWER_BYTES); empty when the body of an error
    /// status could not be read.
    pub body: Vec<u8>,
}

/// A failed attempt that deserves another one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transient {
    /// The answer's status, when there was one.
    pub status: Option<u16>,
    /// Short machine-friendly kind for logs: "http", "timeout", "connect", "reset",
    /// "truncated_body", ...
    pub kind: &'static str,
    /// The words an adapter's "unavailable" error gives as its cause: "HTTP 503",
    /// "timeout after 5s", "connection error", ...
    pub cause: String,
    /// The delay the server asked for (`Retry-After`), if any.
    pub retry_after: Option<Duration>,
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt {
    Final(Answer),
    Transient(Transient),
}

/// Sends `request` once and reads its answer, all of it cut at `budget` (connect, send and the
/// whole body).
///
/// `retried` sees the status and headers of every answer, and says whether it deserves another
/// attempt; such an answer's body is not read (the status says it all), and its `Retry-After`
/// is kept. Timeouts and broken connections are transient too. A success whose body could not
/// be read is asked again: the adapters retry only calls that are safe to repeat (reads, and
/// mutations with an idempotency key). An error status is final whatever its body; only the
/// server's words are lost.
pub async fn attempt(
    request: RequestBuilder,
    budget: Duration,
    retried: impl FnOnce(StatusCode, &HeaderMap) -> bool + Send,
) -> Attempt {
    let exchange = async {
        let response = request.send().await?;
        let status = response.status();
        if retried(status, response.headers()) {
            let hint = retry_after(response.headers(), Utc::now());
            return Ok((status, hint, None));
        }
        Ok::<_, reqwest::Error>((status, None, Some(read_capped(response).await)))
    };
    let timed_out = || format!("timeout after {}", human(budget));
    match tokio::time::timeout(budget, exchange).await {
        Err(_) => Attempt::Transient(Transient {
            status: None,
            kind: "timeout",
            cause: timed_out(),
            retry_after: None,
        }),
        Ok(Err(error)) => {
            let (kind, cause) = transport_failure(&error);
            Attempt::Transient(Transient {
                status: None,
                kind,
                cause: if kind == "timeout" {
                    timed_out()
                } else {
                    cause.to_owned()
                },
                retry_after: None,
            })
        }
        Ok(Ok((status, hint, body))) => match body {
            None => Attempt::Transient(Transient {
                status: Some(status.as_u16()),
                kind: "http",
                cause: format!("HTTP {}", status.as_u16()),
                retry_after: hint,
            }),
            Some(Ok(body)) => Attempt::Final(Answer { status, body }),
            Some(Err(_)) if status.is_success() => Attempt::Transient(Transient {
                status: Some(status.as_u16()),
                kind: "truncated_body",
                cause: "truncated response body".into(),
                retry_after: None,
            }),
            Some(Err(_)) => Attempt::Final(Answer {
                status,
                body: Vec::new(),
            }),
        },
    }
}
