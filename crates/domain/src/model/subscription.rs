use chrono::{DateTime, Utc};

use super::StripeSubscriptionId;

/// A subscription as story 1.3 stored it after creating the trial in Stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The local row id.
    pub id: String,
    pub organization_id: String,
    pub stripe_subscription_id: StripeSubscriptionId,
    pub plan_code: String,
    /// Stripe's status (`trialing`, `active`, ...).
    pub status: String,
    pub trial_ends_at: Option<DateTime<Utc>>,
}

impl Subscription {
    /// The trial end to hand to Stigg, when Stripe still has the subscription in trial.
    pub fn trial_end(&self) -> Option<Option<DateTime<Utc>>> {
        (self.status == "trialing").then_some(self.trial_ends_at)
    }
}
