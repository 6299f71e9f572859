//! Stripe's error answers, `{"error": {"type", "code"?, "message", "param"?}}`, and the
//! [`StripeError`] each final (non-retried) answer becomes.

use onboarding_adapters_http::Refusal;
use onboarding_domain::ports::StripeError;
use reqwest::StatusCode;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(default)]
    error: ErrorBody,
}

/// The fields of Stripe's error object that say what went wrong.
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) code: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// Stripe's error object; empty when the body is not one (a proxy's page, say).
pub(crate) fn parse_error_body(body: &[u8]) -> ErrorBody {
    serde_json::from_slice::<Envelope>(body)
        .map(|envelope| envelope.error)
        .unwrap_or_default()
}

/// Stripe's "no such object": a 404 whose code is `resource_missing`. A 404 without it (an
/// unknown URL, from a wrong `api_url`) is a rejection, never "absent".
pub(crate) fn is_resource_missing(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::NOT_FOUND
        && parse_error_body(body).code.as_deref() == Some("resource_missing")
}

/// The error for a final answer that is neither a success nor "absent": `attempts` were made
/// (for [`StripeError::Unavailable`] when Stripe said not to retry a transient status).
pub(crate) fn error_for_status(
    status: StatusCode,
    body: &[u8],
    attempts: u32,
    api_key: &str,
) -> StripeError {
    match status.as_u16() {
        // Whatever Stripe said (it echoes a wrong key, masked), nothing of it is repeated.
        status @ (401 | 403) => StripeError::Unauthorized { status },
        // Transient by nature, but final: Stripe-Should-Retry said no, or they outlasted the
        // attempts after Stripe asked for a retry of something else.
        408 | 429 | 500..=599 => StripeError::Unavailable {
            attempts,
            cause: format!("HTTP {}", status.as_u16()),
        },
        status @ 400..=499 => {
            let parsed = parse_error_body(body);
            // Stripe's `type` stands in for a missing `code`.
            let code = parsed.code.as_deref().or(parsed.kind.as_deref());
            let Refusal { code, message } =
                Refusal::shown(code, parsed.message.as_deref(), api_key);
            StripeError::Rejected {
                status,
                code,
                message,
            }
        }
        other => StripeError::InvalidResponse(format!("unexpected HTTP {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk_test_51Hsecret";

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap_or_default()
    }

    #[test]
    fn only_resource_missing_404s_are_absent() {
        let missing = br#"{"error": {"type": "invalid_request_error", "code": "resource_missing",
            "message": "No such subscription: 'sub_x'", "param": "id"}}"#;
        let unknown_url = br#"{"error": {"type": "invalid_request_error",
            "message": "Unrecognized request URL (GET: /v2/subscriptions/sub_x)."}}"#;
        assert!(is_resource_missing(status(404), missing));
        assert!(!is_resource_missing(status(404), unknown_url));
        assert!(!is_resource_missing(status(404), b"<html>Not Found</html>"));
        assert!(!is_resource_missing(status(400), missing));
        assert_eq!(
            error_for_status(status(404), unknown_url, 1, KEY),
            StripeError::Rejected {
                status: 404,
                code: "invalid_request_error".into(),
                message: "Unrecognized request URL (GET: /v2/subscriptions/sub_x).".into(),
            }
        );
    }

    #[test]
    fn maps_statuses() {
        let wrong_key = br#"{"error": {"type": "invalid_request_error",
            "message": "Invalid API Key provided: sk_test_****cret"}}"#;
        assert_eq!(
            error_for_status(status(401), wrong_key, 1, KEY),
            StripeError::Unauthorized { status: 401 }
        );
        assert_eq!(
            error_for_status(status(403), b"", 1, KEY),
            StripeError::Unauthorized { status: 403 }
        );
        assert_eq!(
            error_for_status(
                status(400),
                br#"{"error": {"type": "invalid_request_error", "code": "parameter_unknown",
                    "message": "Received unknown parameter: expand"}}"#,
                1,
                KEY
            ),
            StripeError::Rejected {
                status: 400,
                code: "parameter_unknown".into(),
                message: "Received unknown parameter: expand".into(),
            }
        );
        assert_eq!(
            error_for_status(status(422), b"", 1, KEY),
            StripeError::Rejected {
                status: 422,
                code: "unknown".into(),
                message: "no message".into(),
            }
        );
        assert_eq!(
            error_for_status(status(503), b"{}", 2, KEY),
            StripeError::Unavailable {
                attempts: 2,
                cause: "HTTP 503".into(),
            }
        );
        assert_eq!(
            error_for_status(status(302), b"", 1, KEY),
            StripeError::InvalidResponse("unexpected HTTP 302".into())
        );
    }

    #[test]
    fn an_echoed_key_is_never_repeated() {
        let echo = format!(
            r#"{{"error": {{"type": "invalid_request_error", "code": "{KEY}", "message": "key {KEY} refused"}}}}"#
        );
        let error = error_for_status(status(400), echo.as_bytes(), 1, KEY);
        assert!(!error.to_string().contains(KEY), "{error}");
        assert!(!format!("{error:?}").contains(KEY), "{error:?}");
    }
}
