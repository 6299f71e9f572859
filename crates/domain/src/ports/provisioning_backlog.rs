use async_trait::async_trait;

use super::RepoError;
use crate::model::{Organization, Subscription};

/// One subscription whose provisioning in Stigg has not finished (never attempted, or
/// attempted without success), as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingProvisioning {
    /// `subscriptions.stripe_subscription_id` exactly as stored: the backlog's sort key and
    /// page cursor, and the item's name in reports even when it breaks the id rule.
    pub key: String,
    /// The organization and the subscription, or why the stored rows cannot be read (a
    /// value the domain refuses, e.g. an id that breaks its rule). Other systems write these
    /// tables, so one bad row must not hide the rest of the backlog: it is listed with the
    /// reason, and the caller reports it.
    pub rows: Result<(Organization, Subscription), String>,
}

impl PendingProvisioning {
    pub fn readable(organization: Organization, subscription: Subscription) -> Self {
        Self {
            key: subscription.stripe_subscription_id.as_str().to_owned(),
            rows: Ok((organization, subscription)),
        }
    }

    pub fn unreadable(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            rows: Err(reason.into()),
        }
    }
}

/// The subscriptions still to provision in Stigg: the work list of a reconciliation.
///
/// A subscription is pending until its provisioning is recorded as finished; a lease or a
/// failed attempt leaves it pending. Only subscriptions whose status is provisioned
/// ([`SubscriptionStatus::PROVISIONABLE`](crate::model::SubscriptionStatus::PROVISIONABLE))
/// are pending; the others are only counted, so that a run can report what it skipped.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ProvisioningBacklog: Send + Sync {
    /// How many subscriptions are pending now.
    async fn count_pending(&self) -> Result<u64, RepoError>;
    /// Subscriptions not provisioned whose status keeps them out of the backlog, counted by
    /// status as stored (e.g. `canceled` → 3), in the order of the status.
    async fn count_skipped_by_status(&self) -> Result<Vec<(String, u64)>, RepoError>;

    /// Up to `limit` pending subscriptions in ascending order of their stored Stripe
    /// subscription id, starting after `after` (keyset pagination: pass the last
    /// `key` of the previous page). A page shorter than `limit`
    /// is the last one.
    async fn pending_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<PendingProvisioning>, RepoError>;
}
