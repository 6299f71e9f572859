use async_trait::async_trait;

use super::RepoError;
use crate::model::{OrgId, Organization, StripeCustomerId};

/// Organizations, as the organization stories stored them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OrgRepo: Send + Sync {
    /// The organization with this id, or `None`.
    async fn find(&self, id: &OrgId) -> Result<Option<Organization>, RepoError>;

    /// The organizations billed as this Stripe customer (the column is not unique), oldest
    /// first; empty when none is.
    async fn find_by_stripe_customer(
        &self,
        customer: &StripeCustomerId,
    ) -> Result<Vec<Organization>, RepoError>;
}
