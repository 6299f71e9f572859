//! An API answer before it becomes an HTTP response; the idempotency cache stores these.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// A success, wrapped in Stigg's `{"data": ...}` envelope.
    pub(crate) fn data(status: u16, data: Value) -> Self {
        Self::raw(status, json!({ "data": data }))
    }

    /// An error in Stigg's `{"code", "message"}` shape.
    pub(crate) fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self::raw(status, json!({ "code": code, "message": message.into() }))
    }

    pub(crate) fn raw(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Self::error(400, "BadUserInput", message)
    }

    pub(crate) fn duplicate() -> Self {
        Self::error(
            409,
            "DuplicatedEntityNotAllowed",
            "Duplicated entity not allowed",
        )
    }

    pub(crate) fn unauthenticated() -> Self {
        Self::error(401, "Unauthenticated", "Invalid or missing API key")
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Whether a repeat with the same `Idempotency-Key` should get this answer back. Rate-limit
    /// and server errors say "try again", so caching them would make every retry fail too.
    pub(crate) fn is_replayable(&self) -> bool {
        self.status != 429 && self.status < 500
    }

    pub(crate) fn to_response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::build(status);
        for (name, value) in &self.headers {
            response.insert_header((*name, value.as_str()));
        }
        response.json(&self.body)
    }
}
