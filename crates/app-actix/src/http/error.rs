//! The one place where failures become HTTP answers: the contract's codes as statuses, and
//! the caller's trace ids echoed in the body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use onboarding_domain::input::FieldError;
use onboarding_domain::model::{CorrelationId, RequestId};

use crate::failure::{ErrorBody, ErrorCode, Failure};

impl ErrorCode {
    /// The status the contract answers this code with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest | Self::InvalidSignature => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The caller's trace ids, when they were valid; echoed in every API answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceIds {
    pub request_id: Option<RequestId>,
    pub correlation_id: Option<CorrelationId>,
}

/// An API error answer: the failure, and the ids to echo with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub failure: Failure,
    pub ids: TraceIds,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>, ids: &TraceIds) -> Self {
        Self::from_failure(Failure::new(code, message), ids)
    }

    pub fn invalid(message: impl Into<String>, details: Vec<FieldError>, ids: &TraceIds) -> Self {
        Self::from_failure(Failure::invalid(message, details), ids)
    }

    pub fn from_failure(failure: Failure, ids: &TraceIds) -> Self {
        Self {
            failure,
            ids: ids.clone(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.failure.code
    }

    /// The JSON body of the answer.
    pub fn body(&self) -> ErrorBody<'_> {
        self.failure.body(
            self.ids.request_id.as_ref().map(RequestId::as_str),
            self.ids.correlation_id.as_ref().map(CorrelationId::as_str),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code().as_str(), self.failure.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code()).json(self.body());
        // The API middleware reads the code back for the debug-log row and metrics.
        response.extensions_mut().insert(self.code());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_carries_the_status_the_code_and_the_valid_ids() {
        let ids = TraceIds {
            request_id: RequestId::parse("req-1").ok(),
            correlation_id: None,
        };
        let answer = ApiError::new(ErrorCode::NotFound, "organization 'o' not found", &ids);
        assert_eq!(answer.status_code(), StatusCode::NOT_FOUND);
        let body = serde_json::to_value(answer.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "code": "NOT_FOUND",
                "message": "organization 'o' not found",
                "requestId": "req-1",
                "correlationId": null,
            })
        );
    }
}
