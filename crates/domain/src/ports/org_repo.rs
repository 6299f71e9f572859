use async_trait::async_trait;

use super::RepoError;
use crate::model::{OrgId, Organization, StripeCustomerId};

/// Organizations, as the organization stories stored them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OrgRepo: Send + Sync {
    /// The organization with this id, or `None`.
    async fn find(&self, id: &OrgId) -> Result<Option<Organization>, RepoError>;

    /// The organization billed as this Stripe customer, or `None`. Should several claim it
    /// (the column is not unique), the one created first.
    async fn find_by_stripe_customer(
        &self,
        customer: &StripeCustomerId,
    ) -> Result<Option<Organization>, RepoError>;
}
