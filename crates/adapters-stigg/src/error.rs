//! Reading Stigg's error bodies and turning final (non-retried) answers into [`StiggError`].
//!
//! Stigg's docs disagree on the error shape, so all three seen in the wild are accepted:
//! `{code, message}`, `{error: {code, message}}` and `{error: "...", message}`.

use onboarding_adapters_http::Refusal;
use onboarding_domain::ports::StiggError;
use reqwest::StatusCode;
use serde_json::Value;

use crate::Operation;

/// `code` and `message` of an error body, whichever shape it came in.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
}

pub(crate) fn parse_error_body(body: &[u8]) -> ErrorBody {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        // Not JSON (a proxy's HTML page, say): keep a readable start of it as the message.
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        return ErrorBody {
            code: None,
            message: (!text.is_empty()).then(|| text.to_owned()),
        };
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    match value.get("error") {
        Some(nested @ Value::Object(_)) => ErrorBody {
            code: text(nested.get("code")),
            message: text(nested.get("message")).or_else(|| text(value.get("message"))),
        },
        Some(Value::String(code)) => ErrorBody {
            code: Some(code.clone()),
            message: text(value.get("message")),
        },
        _ => ErrorBody {
            code: text(value.get("code")),
            message: text(value.get("message")),
        },
    }
}

/// The error for an answer that is final and not a success: 401/403, other 4xx (409 is
/// handled by the caller), and anything else unexpected.
pub(crate) fn error_for_status(
    operation: Operation,
    status: StatusCode,
    body: &[u8],
    api_key: &str,
) -> StiggError {
    match status.as_u16() {
        // Whatever Stigg said, nothing of the request (the key above all) is repeated.
        401 | 403 => StiggError::Unauthorized,
        status @ 400..=499 => {
            let parsed = parse_error_body(body);
            let Refusal { code, message } =
                Refusal::shown(parsed.code.as_deref(), parsed.message.as_deref(), api_key);
            let operation = operation.as_str();
            // The rejections the domain acts on: variants of their own, not string matches
            // there.
            match (status, code.as_str()) {
                (404, "CustomerNotFound") => {
                    return StiggError::CustomerNotFound { operation, message };
                }
                (404, "SubscriptionNotFound") => {
                    return StiggError::SubscriptionNotFound { operation, message };
                }
                _ => {}
            }
            StiggError::Rejected {
                operation,
                status,
                code,
                message,
            }
        }
        _ => StiggError::InvalidResponse {
            operation: operation.as_str(),
            detail: format!("unexpected HTTP {}", status.as_u16()),
        },
    }
}

pub(crate) fn invalid_response(operation: Operation, detail: impl Into<String>) -> StiggError {
    StiggError::InvalidResponse {
        operation: operation.as_str(),
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: &str) -> ErrorBody {
        parse_error_body(body.as_bytes())
    }

    fn both(code: &str, message: &str) -> ErrorBody {
        ErrorBody {
            code: Some(code.into()),
            message: Some(message.into()),
        }
    }

    #[test]
    fn accepts_the_three_error_shapes() {
        assert_eq!(
            parsed(r#"{"code":"BadUserInput","message":"bad email"}"#),
            both("BadUserInput", "bad email")
        );
        assert_eq!(
            parsed(r#"{"error":{"code":"PlanNotFound","message":"no such plan"}}"#),
            both("PlanNotFound", "no such plan")
        );
        assert_eq!(
            parsed(r#"{"error":"rate_limit_exceeded","message":"Too many requests"}"#),
            both("rate_limit_exceeded", "Too many requests")
        );
    }

    #[test]
    fn tolerates_partial_and_foreign_bodies() {
        assert_eq!(parsed(r#"{"message":"only text"}"#).code, None);
        assert_eq!(parsed("").message, None);
        assert_eq!(
            parsed("<html>Bad gateway</html>").message.as_deref(),
            Some("<html>Bad gateway</html>")
        );
        assert_eq!(parsed(r#"[1,2]"#), ErrorBody::default());
    }

    #[test]
    fn maps_statuses() {
        let op = Operation::ProvisionSubscription;
        assert_eq!(
            error_for_status(op, StatusCode::UNAUTHORIZED, b"{}", "k"),
            StiggError::Unauthorized
        );
        assert_eq!(
            error_for_status(op, StatusCode::FORBIDDEN, b"{}", "k"),
            StiggError::Unauthorized
        );
        assert_eq!(
            error_for_status(
                op,
                StatusCode::NOT_FOUND,
                br#"{"code":"PlanNotFound","message":"Plan not found"}"#,
                "k"
            ),
            StiggError::Rejected {
                operation: "provision_subscription",
                status: 404,
                code: "PlanNotFound".into(),
                message: "Plan not found".into(),
            }
        );
        assert_eq!(
            error_for_status(op, StatusCode::UNPROCESSABLE_ENTITY, b"", "k"),
            StiggError::Rejected {
                operation: "provision_subscription",
                status: 422,
                code: "unknown".into(),
                message: "no message".into(),
            }
        );
        assert_eq!(
            error_for_status(
                Operation::CancelSubscription,
                StatusCode::NOT_FOUND,
                br#"{"code":"SubscriptionNotFound","message":"Subscription not found"}"#,
                "k"
            ),
            StiggError::SubscriptionNotFound {
                operation: "cancel_subscription",
                message: "Subscription not found".into(),
            }
        );
        assert!(matches!(
            error_for_status(op, StatusCode::FOUND, b"", "k"),
            StiggError::InvalidResponse { .. }
        ));
    }
}
