use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{CallContext, StiggError, StiggSubscription};
use crate::model::{OrgId, Plan, StripeSubscriptionId};

/// A subscription to start in Stigg once the first one ended or the plan changed. Stigg
/// assigns its id: the Stripe subscription id is taken by the one provisioned first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionCreation {
    pub customer_id: OrgId,
    /// The Stripe subscription it mirrors, sent as Stigg's billing id.
    pub stripe_subscription_id: StripeSubscriptionId,
    pub plan: Plan,
    /// Set when the subscription starts in trial, to the trial's end.
    pub trial_end: Option<DateTime<Utc>>,
}

/// A change Stigg makes in place on a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionPatch {
    /// Move the end of the running trial.
    TrialEnd(DateTime<Utc>),
    /// Take back a cancellation date.
    RemoveCancellation,
}

/// When and how a subscription ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// Now. Without `revoke_entitlements` Stigg applies its default (a downgrade).
    Immediately { revoke_entitlements: bool },
    /// On this date; the subscription stays active until then.
    OnDate(DateTime<Utc>),
}

/// What the lifecycle sync changes in Stigg after provisioning: a new subscription, a patch,
/// a cancellation, an archived customer.
///
/// Every call takes its idempotency key from the caller (the same on every retry of one
/// move, see [`Move::idempotency_key`](crate::model::Move::idempotency_key)), so that a
/// repeated move is replayed by Stigg instead of done twice. Implementations retry
/// transient failures under that key, within the context's deadline, and count each call
/// against Stigg's limits per operation and per customer or subscription.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StiggLifecycle: Send + Sync {
    /// Starts `subscription` at once, replacing the customer's active one, with payment
    /// collection left to Stripe. Returns the id Stigg assigned.
    async fn create_subscription(
        &self,
        subscription: &SubscriptionCreation,
        idempotency_key: &str,
        ctx: &CallContext,
    ) -> Result<StiggSubscription, StiggError>;

    /// [`StiggError::SubscriptionNotFound`] when Stigg has no subscription `subscription_id`.
    async fn patch_subscription(
        &self,
        subscription_id: &str,
        patch: SubscriptionPatch,
        idempotency_key: &str,
        ctx: &CallContext,
    ) -> Result<(), StiggError>;

    /// An immediate cancel of a subscription already canceled or expired is done: that is
    /// what was asked. A cancel on a date of one is refused ([`StiggError::Rejected`]): it
    /// ended before that date. [`StiggError::SubscriptionNotFound`] when Stigg has no such
    /// subscription.
    async fn cancel_subscription(
        &self,
        subscription_id: &str,
        cancellation: Cancellation,
        idempotency_key: &str,
        ctx: &CallContext,
    ) -> Result<(), StiggError>;

    /// Archives the customer, which cancels its subscriptions; one archived before counts
    /// as done. [`StiggError::CustomerNotFound`] when Stigg does not know the customer.
    async fn archive_customer(
        &self,
        customer_id: &OrgId,
        idempotency_key: &str,
        ctx: &CallContext,
    ) -> Result<(), StiggError>;
}
