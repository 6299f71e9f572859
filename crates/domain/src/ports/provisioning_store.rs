use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepoError;
use crate::model::{
    LeaseToken, OrgId, ProvisionedCustomer, ProvisionedSubscription, ProvisioningState,
    StripeSubscriptionId,
};

/// The record of what has been provisioned in Stigg, and the lease that lets exactly one
/// caller (on any instance sharing the store) provision a given subscription at a time.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ProvisioningStore: Send + Sync {
    /// What is recorded for this subscription and its organization's customer.
    async fn load(
        &self,
        org_id: &OrgId,
        subscription: &StripeSubscriptionId,
    ) -> Result<ProvisioningState, RepoError>;

    /// Takes the lease on this subscription until `now + ttl`, unless the subscription is
    /// already provisioned or another holder's lease has not expired (then `None`).
    /// Atomic across processes.
    async fn try_acquire_lease(
        &self,
        org_id: &OrgId,
        subscription: &StripeSubscriptionId,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<LeaseToken>, RepoError>;

    /// When the subscription's current lease ends, if one was ever taken and the
    /// subscription is not provisioned: for telling a waiting caller how long to wait.
    async fn lease_expiry(
        &self,
        subscription: &StripeSubscriptionId,
    ) -> Result<Option<DateTime<Utc>>, RepoError>;
    /// Gives the lease back early (after a failure), recording why the attempt failed.
    /// A lease that has since passed to another holder is left alone.
    async fn release_lease(&self, lease: &LeaseToken, failure: &str) -> Result<(), RepoError>;

    /// Records that the organization's customer exists in Stigg with this billing id,
    /// replacing an earlier record of the organization's customer.
    async fn record_customer(&self, customer: &ProvisionedCustomer) -> Result<(), RepoError>;
    /// Forgets the organization's customer (Stigg no longer knows it), so that the next
    /// provisioning creates it again. Forgetting an unrecorded customer is a no-op.
    async fn forget_customer(&self, org_id: &OrgId) -> Result<(), RepoError>;

    /// Records that the subscription exists in Stigg and ends its lease.
    async fn record_subscription(
        &self,
        subscription: &ProvisionedSubscription,
    ) -> Result<(), RepoError>;
}
