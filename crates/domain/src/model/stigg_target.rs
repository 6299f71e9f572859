//! What Stigg must have for one Stripe subscription, derived from what Stripe holds now.

use chrono::{DateTime, Utc};

use super::Plan;

/// The state Stigg must reach for one Stripe subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StiggTarget {
    /// An active subscription for the organization's customer.
    Active(ActiveTarget),
    /// No active subscription: whatever is there is canceled immediately.
    Canceled {
        /// Entitlements end with the subscription instead of Stigg's default (a downgrade).
        revoke_entitlements: bool,
    },
    /// Stigg is left as it is.
    Untouched(Untouched),
}

/// An active subscription as Stigg must have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveTarget {
    pub plan: Plan,
    /// Set while Stripe runs a trial, to its end; none otherwise. When Stripe ends a
    /// trial, Stigg needs no call: it turns its own trial into the paid plan at its end.
    pub trial_end: Option<DateTime<Utc>>,
    /// When the subscription ends, if Stripe will end it.
    pub cancellation_date: Option<DateTime<Utc>>,
}

/// Why Stigg is left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untouched {
    /// The first payment is still due: nothing to mirror yet.
    Incomplete,
    /// Paused or unpaid, and the policy keeps such subscriptions as they are.
    SuspendedKept,
}
