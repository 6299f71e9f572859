use async_trait::async_trait;

use super::CallContext;
use crate::model::{StripeCustomer, StripeCustomerId, StripeSubscription, StripeSubscriptionId};

/// Why Stripe's answer could not be had. Messages never carry the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// 429, 5xx, timeouts or broken connections outlasted the retries or the deadline: a
    /// later attempt may succeed.
    #[error("Stripe API unavailable after {attempts} attempt{s} ({cause})", s = if *attempts == 1 { "" } else { "s" })]
    Unavailable { attempts: u32, cause: String },
    /// 401 or 403: the key is wrong or lacks the read permission.
    #[error("Stripe rejected the API key (HTTP {status})")]
    Unauthorized { status: u16 },
    /// Stripe refused the request itself (400, other 4xx).
    #[error("Stripe rejected the request (HTTP {status} {code}): {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// Stripe answered something we cannot read.
    #[error("Stripe sent an unexpected response: {0}")]
    InvalidResponse(String),
}

impl StripeError {
    /// Whether retrying later may help without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// Stripe's API, read only: what is true now about a subscription or a customer. Events
/// only say that something changed; the sync decides from these answers.
///
/// Implementations retry transient failures within the context's deadline.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StripeReader: Send + Sync {
    /// `None` when Stripe has no such subscription (404 `resource_missing`).
    async fn subscription(
        &self,
        id: &StripeSubscriptionId,
        ctx: &CallContext,
    ) -> Result<Option<StripeSubscription>, StripeError>;

    /// `None` when Stripe has no such customer. A deleted customer is answered with
    /// `deleted: true`, not `None`.
    async fn customer(
        &self,
        id: &StripeCustomerId,
        ctx: &CallContext,
    ) -> Result<Option<StripeCustomer>, StripeError>;
}
