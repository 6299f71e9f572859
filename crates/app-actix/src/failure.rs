//! The contract's errors, as both rooms show them: a code, a message safe to show, and every
//! offending field. The HTTP room answers a [`Failure`] with its status (`http::error`); the
//! command line prints the same JSON shape ([`ErrorBody`]).
//!
//! Messages of internal failures say what failed but never carry SQL, secrets or stack
//! traces; the full cause goes to the log.

use onboarding_domain::input::FieldError;
use onboarding_domain::ports::RepoError;
use onboarding_domain::use_cases::provision_subscription::ProvisionError;
use serde::Serialize;
use utoipa::ToSchema;

/// The contract's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    BadRequest,
    /// A webhook delivery whose `Stripe-Signature` does not check out.
    InvalidSignature,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    PayloadTooLarge,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::Internal => "INTERNAL",
        }
    }
}

/// Why a request was not done: refused (bad input, not found) or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
    /// Every offending header, field or argument (bad requests only).
    pub details: Vec<FieldError>,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn invalid(message: impl Into<String>, details: Vec<FieldError>) -> Self {
        Self {
            details,
            ..Self::new(ErrorCode::BadRequest, message)
        }
    }

    /// The failure in the contract's error shape, with the caller's trace ids.
    pub fn body<'a>(
        &'a self,
        request_id: Option<&'a str>,
        correlation_id: Option<&'a str>,
    ) -> ErrorBody<'a> {
        ErrorBody {
            code: self.code,
            message: &self.message,
            details: &self.details,
            request_id,
            correlation_id,
        }
    }
}

// The CLI prints this shape too, so that a script reads both alike.
/// The body of every error answer (`application/json`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ErrorResponse)]
pub struct ErrorBody<'a> {
    pub code: ErrorCode,
    /// What went wrong, for a person; 5xx messages name the failing part, never secrets or SQL.
    #[schema(example = "request body is invalid")]
    pub message: &'a str,
    /// Every offending header or field (400 only; left out when empty).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[schema(value_type = Vec<FieldErrorBody>)]
    pub details: &'a [FieldError],
    /// The `x-request-id` header, when it was valid.
    #[schema(required = true, example = "req-1")]
    pub request_id: Option<&'a str>,
    /// The `x-correlation-id` header, when it was valid.
    #[schema(required = true, example = "corr-1")]
    pub correlation_id: Option<&'a str>,
}

// The schema of the domain's `FieldError`, which knows nothing of OpenAPI.
/// One offending header or body field of a 400.
#[derive(ToSchema)]
#[schema(as = FieldError)]
pub struct FieldErrorBody {
    /// The JSON field (`planCode`), the header (`x-request-id`) or `body`.
    #[schema(example = "planCode")]
    pub field: String,
    #[schema(example = "unknown plan code 'plan_x'")]
    pub message: String,
}

/// The provisioning use case's refusals and failures, in the contract's codes (the API's
/// answer and the CLI's result alike).
impl From<&ProvisionError> for Failure {
    fn from(error: &ProvisionError) -> Self {
        match error {
            ProvisionError::OrganizationNotFound { .. }
            | ProvisionError::StripeCustomerNotFound { .. }
            | ProvisionError::SubscriptionNotFound { .. } => {
                Self::new(ErrorCode::NotFound, error.to_string())
            }
            ProvisionError::PlanMismatch { .. } => Self::invalid(
                "request body is invalid",
                vec![FieldError::new("planCode", error.to_string())],
            ),
            ProvisionError::NotProvisionable { .. } => Self::invalid(
                "request body is invalid",
                vec![FieldError::new("stripeSubscriptionId", error.to_string())],
            ),
            ProvisionError::InProgress { .. } => Self::new(ErrorCode::Internal, error.to_string()),
            // Stigg's own words reach the caller (cut to 200 characters by the adapter) only
            // after the redaction debug-log bodies get: a key or card number it echoes stays
            // out of the answer.
            ProvisionError::Stigg(_) => Self::new(
                ErrorCode::Internal,
                crate::redact::redact_message(&error.to_string()),
            ),
            ProvisionError::Store(RepoError::Unavailable(_)) => {
                Self::new(ErrorCode::Internal, "database unavailable, retry later")
            }
            ProvisionError::Store(RepoError::Unexpected(_)) => {
                Self::new(ErrorCode::Internal, "database error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use onboarding_domain::model::SubscriptionStatus;
    use onboarding_domain::ports::StiggError;

    use super::*;

    fn parse<T: std::str::FromStr>(raw: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        raw.parse().unwrap()
    }

    #[test]
    fn maps_every_provisioning_error_to_the_contracts_status() {
        let cases = [
            (
                ProvisionError::OrganizationNotFound {
                    org_id: parse("org_1"),
                },
                404,
            ),
            (
                ProvisionError::StripeCustomerNotFound {
                    org_id: parse("org_1"),
                    stripe_customer_id: parse("cus_1"),
                },
                404,
            ),
            (
                ProvisionError::SubscriptionNotFound {
                    org_id: parse("org_1"),
                    stripe_subscription_id: parse("sub_1"),
                },
                404,
            ),
            (
                ProvisionError::PlanMismatch {
                    requested: parse("plan_a"),
                    actual: "plan_b".into(),
                },
                400,
            ),
            (
                ProvisionError::NotProvisionable {
                    stripe_subscription_id: parse("sub_1"),
                    status: SubscriptionStatus::Canceled,
                },
                400,
            ),
            (
                ProvisionError::InProgress {
                    stripe_subscription_id: parse("sub_1"),
                    until: None,
                },
                500,
            ),
            (ProvisionError::Stigg(StiggError::Unauthorized), 500),
            (
                ProvisionError::Store(RepoError::Unavailable("pool timed out".into())),
                500,
            ),
        ];
        for (error, status) in cases {
            let failure = Failure::from(&error);
            assert_eq!(failure.code.status().as_u16(), status, "{error:?}");
        }
    }

    #[test]
    fn database_details_stay_in_the_log() {
        let error =
            ProvisionError::Store(RepoError::Unexpected("no such table: organizations".into()));
        let api = Failure::from(&error);
        assert_eq!(api.message, "database error");
    }

    #[test]
    fn stigg_message_names_the_failure() {
        let error = ProvisionError::Stigg(StiggError::Unavailable {
            attempts: 3,
            cause: "HTTP 503".into(),
        });
        let api = Failure::from(&error);
        assert_eq!(
            api.message,
            "Stigg API unavailable after 3 attempts (HTTP 503)"
        );
        assert_eq!(api.code, ErrorCode::Internal);
    }

    #[test]
    fn secrets_in_stiggs_words_are_masked() {
        let error = ProvisionError::Stigg(StiggError::Rejected {
            operation: "provision_customer",
            status: 400,
            code: "BadUserInput".into(),
            message: "key sk_live_51HabcDEF refused; password=hunter2".into(),
        });
        let api = Failure::from(&error);
        assert!(
            api.message
                .starts_with("Stigg rejected the provision_customer request")
        );
        for secret in ["sk_live_51HabcDEF", "hunter2"] {
            assert!(!api.message.contains(secret), "{}", api.message);
        }
    }
}
