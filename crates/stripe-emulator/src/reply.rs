//! An answer before it becomes an HTTP response, and Stripe's error shape:
//! `{"error": {"type", "message", "code"?, "param"?}}`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    pub(crate) fn error(
        status: u16,
        kind: &str,
        code: Option<&str>,
        message: impl Into<String>,
        param: Option<&str>,
    ) -> Self {
        let mut error = Map::new();
        error.insert("type".into(), kind.into());
        error.insert("message".into(), message.into().into());
        if let Some(code) = code {
            error.insert("code".into(), code.into());
            error.insert(
                "doc_url".into(),
                format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )
                .into(),
            );
        }
        if let Some(param) = param {
            error.insert("param".into(), param.into());
        }
        let mut body = Map::new();
        body.insert("error".into(), Value::Object(error));
        Self {
            status,
            body: Value::Object(body),
        }
    }

    /// A 400 about the request itself.
    pub(crate) fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Self::error(400, "invalid_request_error", None, message, param)
    }

    /// Stripe's 404 for an id that names nothing: "No such subscription: 'sub_…'".
    pub(crate) fn resource_missing(kind: &str, id: &str, param: &str) -> Self {
        Self::error(
            404,
            "invalid_request_error",
            Some("resource_missing"),
            format!("No such {kind}: '{id}'"),
            Some(param),
        )
    }

    /// Stripe's 401: no key, or not the account's key (shown with all but its end masked).
    pub(crate) fn unauthorized(presented: Option<&str>) -> Self {
        let message = match presented {
            None | Some("") => "You did not provide an API key. You need to provide your API \
                 key in the Authorization header, using Bearer auth (e.g. 'Authorization: \
                 Bearer YOUR_SECRET_KEY')."
                .to_owned(),
            Some(key) => format!("Invalid API Key provided: {}", masked(key)),
        };
        Self::error(401, "invalid_request_error", None, message, None)
    }

    /// An injected failure: the error type Stripe uses for that status.
    pub(crate) fn injected(status: u16) -> Self {
        let (kind, code) = match status {
            429 => ("invalid_request_error", Some("rate_limit")),
            500.. => ("api_error", None),
            _ => ("invalid_request_error", None),
        };
        Self::error(
            status,
            kind,
            code,
            format!("Injected fault: HTTP {status}"),
            None,
        )
    }

    pub(crate) fn to_response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status).json(&self.body)
    }
}

/// `sk_test_abcdef1234` -> `sk_test_******1234`, as Stripe echoes a wrong key.
fn masked(key: &str) -> String {
    let prefix_len = key.rfind('_').map_or(0, |at| at + 1);
    let (prefix, secret) = key.split_at(prefix_len);
    let shown = secret.len().saturating_sub(4);
    let tail: String = secret.chars().skip(shown).collect();
    format!("{prefix}{}{tail}", "*".repeat(shown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_object_is_stripes_404() {
        let reply = Reply::resource_missing("subscription", "sub_x", "id");
        assert_eq!(reply.status, 404);
        assert_eq!(
            reply.body,
            json!({"error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
                "message": "No such subscription: 'sub_x'",
                "param": "id",
            }})
        );
    }

    #[test]
    fn a_wrong_key_is_echoed_masked() {
        assert_eq!(masked("sk_test_abcdef1234"), "sk_test_******1234");
        assert_eq!(masked("abc"), "abc");
        let reply = Reply::unauthorized(Some("sk_test_abcdef1234"));
        assert_eq!(reply.status, 401);
        assert_eq!(
            reply.body["error"]["message"],
            "Invalid API Key provided: sk_test_******1234"
        );
        assert!(
            Reply::unauthorized(None).body["error"]["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("You did not provide an API key"))
        );
    }
}
