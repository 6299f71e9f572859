use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::{
    BillingPeriod, CorrelationId, OrgId, PlanCode, StripeCustomerId, StripeSubscriptionId, TenantId,
};

/// What every Stigg call carries: whose operation it is and when it must give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    pub correlation_id: CorrelationId,
    /// No attempt, retry or wait for the rate limit may run past this instant.
    pub deadline: Instant,
}

/// A customer to create in Stigg for an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerProvisioning {
    /// The Stigg customer id: the organization id.
    pub customer_id: OrgId,
    pub name: String,
    pub email: Option<String>,
    /// The Stripe customer that bills this organization.
    pub billing_id: StripeCustomerId,
    pub tenant_id: Option<TenantId>,
    /// See [`KeyRenewal`].
    pub renewal: Option<KeyRenewal>,
}

/// Set when a create is sent again for an entity Stigg answered for but no longer has (a
/// customer deleted, or a 2xx that created nothing): Stigg replays its cached answer to an
/// idempotency key for 24 h, so the repeat needs a key of its own. The entity's id stays
/// the natural key, so a new idempotency key can never make a second one (a duplicate id is
/// a 409, read back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRenewal(pub String);

/// A trial Stripe is running, mirrored in Stigg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialConfiguration {
    pub ends_at: Option<DateTime<Utc>>,
}

/// A subscription to create in Stigg, mirroring the Stripe subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionProvisioning {
    /// The Stigg subscription id: the Stripe subscription id.
    pub subscription_id: StripeSubscriptionId,
    pub customer_id: OrgId,
    pub plan_code: PlanCode,
    pub stigg_plan_id: String,
    pub billing_period: BillingPeriod,
    pub trial: Option<TrialConfiguration>,
    /// See [`KeyRenewal`].
    pub renewal: Option<KeyRenewal>,
}

/// A customer that exists in Stigg (created now, or found identical after a conflict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StiggCustomer {
    pub id: String,
}

/// A subscription that exists in Stigg (created now, or found identical after a conflict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StiggSubscription {
    pub id: String,
}

/// Why a Stigg call did not do what was asked (a provisioning or a lifecycle change). Every
/// variant's message is safe to show to the caller: no key, no body, no stack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StiggError {
    /// Transient failures (5xx, 408, 429, timeouts, broken connections) outlasted the retries
    /// or the deadline. `cause` names the last one, e.g. "HTTP 503".
    #[error("Stigg API unavailable after {attempts} attempt{s} ({cause})", s = if *attempts == 1 { "" } else { "s" })]
    Unavailable { attempts: u32, cause: String },
    /// Our own budget of calls per minute would make this call wait past its deadline. The
    /// call was not sent.
    #[error("Stigg rate limit reached, retry later")]
    RateLimited,
    /// The deadline passed before the call could be sent (the steps before it took the whole
    /// time). The call was not sent.
    #[error("the provisioning deadline passed before the Stigg call was sent; retry later")]
    DeadlinePassed,
    /// 401 or 403: the key is wrong or lacks a permission.
    #[error("Stigg rejected the API key")]
    Unauthorized,
    /// Stigg refused the request itself (400, 404, other 4xx): a configuration or data error.
    #[error("Stigg rejected the {operation} request (HTTP {status} {code}): {message}")]
    Rejected {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// Stigg does not know the customer (404 `CustomerNotFound`): it was never created,
    /// or was deleted or archived since. A recorded customer is then stale.
    #[error("Stigg rejected the {operation} request (HTTP 404 CustomerNotFound): {message}")]
    CustomerNotFound {
        operation: &'static str,
        message: String,
    },
    /// Stigg does not know the subscription (404 `SubscriptionNotFound`) a patch or a
    /// cancellation names: the recorded Stigg subscription id is stale.
    #[error("Stigg rejected the {operation} request (HTTP 404 SubscriptionNotFound): {message}")]
    SubscriptionNotFound {
        operation: &'static str,
        message: String,
    },
    /// The entity already exists in Stigg, but not as we would have created it.
    #[error("{entity} '{id}' exists in Stigg with different data ({difference})")]
    Conflict {
        entity: &'static str,
        id: String,
        difference: String,
    },
    /// Stigg wants to collect a payment; billing belongs to Stripe, so this is a failure.
    #[error(
        "Stigg answered PAYMENT_REQUIRED for subscription '{0}': payment collection must stay with Stripe"
    )]
    PaymentRequired(String),
    /// Stigg answered something we cannot read.
    #[error("Stigg sent an unexpected response to the {operation} request: {detail}")]
    InvalidResponse {
        operation: &'static str,
        detail: String,
    },
}

impl StiggError {
    /// The call never left the process (our own rate limit or the deadline stopped it), so
    /// Stigg cannot have acted on it: a caller may retry later without any doubt.
    pub fn was_not_sent(&self) -> bool {
        matches!(self, Self::RateLimited | Self::DeadlinePassed)
    }
}

/// Stigg, the entitlement platform. Implementations retry transient failures themselves
/// (with one idempotency key per entity), read an entity back after a 409 and return `Ok`
/// when it matches what was asked.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StiggGateway: Send + Sync {
    async fn provision_customer(
        &self,
        customer: &CustomerProvisioning,
        ctx: &CallContext,
    ) -> Result<StiggCustomer, StiggError>;

    async fn provision_subscription(
        &self,
        subscription: &SubscriptionProvisioning,
        ctx: &CallContext,
    ) -> Result<StiggSubscription, StiggError>;
}
