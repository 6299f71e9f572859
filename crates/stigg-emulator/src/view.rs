//! Typed, read-only views of the emulated entities, for tests that check what a client did.

use chrono::{DateTime, Utc};

use crate::store::Subscription;

/// Stigg's subscription statuses, as far as the emulator reaches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Active,
    InTrial,
    Canceled,
}

impl SubscriptionStatus {
    /// The spelling of Stigg's `status` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::InTrial => "IN_TRIAL",
            Self::Canceled => "CANCELED",
        }
    }
}

/// A subscription as the emulator holds it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionView {
    pub id: String,
    pub customer_id: String,
    pub plan_id: String,
    pub status: SubscriptionStatus,
    pub trial_end: Option<DateTime<Utc>>,
    /// When it ends or ended: a cancellation date, or the moment it was canceled.
    pub cancellation_date: Option<DateTime<Utc>>,
}

impl From<&Subscription> for SubscriptionView {
    fn from(subscription: &Subscription) -> Self {
        Self {
            id: subscription.id.clone(),
            customer_id: subscription.customer_id.clone(),
            plan_id: subscription.plan_id.clone(),
            status: subscription.status(),
            trial_end: subscription.trial.as_ref().map(|trial| trial.end_date),
            cancellation_date: subscription.cancellation_date,
        }
    }
}
