use async_trait::async_trait;

use super::RepoError;
use crate::model::{StripeSubscriptionId, Subscription};

/// Subscriptions, as the trial story stored them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SubscriptionRepo: Send + Sync {
    /// The subscription with this Stripe id, whatever organization it belongs to, or `None`.
    async fn find_by_stripe_id(
        &self,
        id: &StripeSubscriptionId,
    ) -> Result<Option<Subscription>, RepoError>;
}
