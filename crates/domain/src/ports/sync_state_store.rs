use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepoError;
use crate::model::{AppliedState, Move, OrgId, StripeEventId, StripeSubscriptionId};

/// A move about to be sent to Stigg, recorded first: if the process dies after Stigg acted
/// but before the result was recorded, the next holder sends it again under the same key
/// (Stigg replays its answer) before deciding anything else, so the record never falls
/// behind what Stigg did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub idempotency_key: String,
    pub action: Move,
}

/// What the sync recorded for one Stripe subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRecord {
    pub org_id: OrgId,
    /// The Stigg state last applied; `None` before the first move.
    pub applied: Option<AppliedState>,
    /// A move sent (or about to be) whose result is not recorded yet.
    pub intent: Option<Intent>,
}

/// The sync state of one subscription as the read route shows it: what was last applied,
/// or, for a subscription only ever provisioned, what provisioning created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncView {
    pub stripe_subscription_id: StripeSubscriptionId,
    pub org_id: String,
    pub tenant_id: Option<String>,
    pub stigg_customer_id: Option<String>,
    pub stigg_subscription_id: Option<String>,
    pub plan_code: Option<String>,
    /// `active` or `canceled`; `None` before anything was applied.
    pub status: Option<String>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub cancellation_date: Option<DateTime<Utc>>,
    pub provisioned_at: Option<DateTime<Utc>>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub last_event_id: Option<String>,
    pub last_error: Option<String>,
}

/// The record of what the lifecycle sync applied in Stigg, per Stripe subscription. Writes
/// happen under the subscription's lease.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SyncStateStore: Send + Sync {
    async fn load(
        &self,
        subscription: &StripeSubscriptionId,
    ) -> Result<Option<SyncRecord>, RepoError>;

    /// Records the move about to be sent (creating the record if needed).
    async fn record_intent(
        &self,
        subscription: &StripeSubscriptionId,
        org_id: &OrgId,
        intent: &Intent,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    /// Forgets the recorded move: Stigg refused it, or it was never sent.
    async fn clear_intent(&self, subscription: &StripeSubscriptionId) -> Result<(), RepoError>;

    /// Records the state after a move succeeded, in the same statement clearing its intent
    /// and the last error.
    async fn record_applied(
        &self,
        subscription: &StripeSubscriptionId,
        org_id: &OrgId,
        stigg_customer_id: &str,
        applied: &AppliedState,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    /// Records that a sync ended (creating the record if needed): when, for which event if
    /// any, and its error if it failed (`None` clears the last one).
    async fn record_outcome<'a>(
        &self,
        subscription: &StripeSubscriptionId,
        org_id: &OrgId,
        event: Option<&'a StripeEventId>,
        error: Option<&'a str>,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    /// The read route's view; `None` when the subscription was never provisioned nor synced.
    async fn view(
        &self,
        subscription: &StripeSubscriptionId,
    ) -> Result<Option<SyncView>, RepoError>;
}
