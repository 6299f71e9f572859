use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepoError;
use crate::model::{
    OrgId, ProvisionedCustomer, ProvisionedSubscription, ProvisioningState, StripeSubscriptionId,
};

/// The record of what has been provisioned in Stigg, step by step, so that an attempt resumes
/// where the last one stopped. Attempts are serialised by the subscription's lease
/// (`LeaseStore`), not by this store.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ProvisioningStore: Send + Sync {
    /// What is recorded for this subscription and its organization's customer.
    async fn load(
        &self,
        org_id: &OrgId,
        subscription: &StripeSubscriptionId,
    ) -> Result<ProvisioningState, RepoError>;

    /// The organization's customer, when it was ever provisioned in Stigg.
    async fn customer(&self, org_id: &OrgId) -> Result<Option<ProvisionedCustomer>, RepoError>;

    /// Counts an attempt at provisioning the subscription (recording it if it is new), made
    /// under its lease. `false` when the subscription is already provisioned: another holder
    /// finished between `load` and taking the lease, and nothing is counted.
    async fn start_attempt(
        &self,
        org_id: &OrgId,
        subscription: &StripeSubscriptionId,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
    /// Records why the last attempt failed (kept until the subscription is provisioned).
    async fn record_failure(
        &self,
        subscription: &StripeSubscriptionId,
        failure: &str,
    ) -> Result<(), RepoError>;

    /// Records that the organization's customer exists in Stigg with this billing id,
    /// replacing an earlier record of the organization's customer.
    async fn record_customer(&self, customer: &ProvisionedCustomer) -> Result<(), RepoError>;
    /// Forgets the organization's customer (Stigg no longer knows it), so that the next
    /// provisioning creates it again. Forgetting an unrecorded customer is a no-op.
    async fn forget_customer(&self, org_id: &OrgId) -> Result<(), RepoError>;

    /// Records that the subscription exists in Stigg; the attempt's failure is cleared.
    async fn record_subscription(
        &self,
        subscription: &ProvisionedSubscription,
    ) -> Result<(), RepoError>;
}
