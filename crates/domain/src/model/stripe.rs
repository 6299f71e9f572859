//! What the service reads back from Stripe's API about a subscription or a customer. Only
//! the fields the lifecycle sync decides on are kept; the adapter parses the rest away.

use chrono::{DateTime, Utc};

use super::{StripeCustomerId, StripePriceId, StripeSubscriptionId, SubscriptionStatus};

/// A Stripe subscription as Stripe's API answers it now (never an event's snapshot, which
/// may be older than what Stripe holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSubscription {
    pub id: StripeSubscriptionId,
    pub customer: StripeCustomerId,
    pub status: SubscriptionStatus,
    pub trial_end: Option<DateTime<Utc>>,
    /// The date Stripe will cancel the subscription on, when one is set.
    pub cancel_at: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    /// Older API versions give the period here; newer ones only on each item.
    pub current_period_end: Option<DateTime<Utc>>,
    /// The first item: its price tells the plan. Stripe never answers a subscription
    /// without items.
    pub first_item: StripeSubscriptionItem,
}

/// One item of a Stripe subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSubscriptionItem {
    pub price: StripePrice,
    pub current_period_end: Option<DateTime<Utc>>,
}

/// The price of a subscription item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripePrice {
    pub id: StripePriceId,
    /// Free text set by whoever created the price; it names a plan code when it is one.
    pub lookup_key: Option<String>,
}

/// A Stripe customer as Stripe's API answers it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeCustomer {
    pub id: StripeCustomerId,
    /// Stripe answers a deleted customer with `"deleted": true` and little else.
    pub deleted: bool,
}
