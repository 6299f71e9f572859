//! Make Stigg follow one Stripe subscription.
//!
//! A webhook only says that a subscription changed; the subscription is read again from
//! Stripe and what Stigg must have is derived from that answer alone ([`target`]), so an
//! event that arrives late, twice or out of order can never bring back an older state.
//! Against the record of what was last applied in Stigg, [`moves`] lists the calls that
//! close the difference, none when there is none; each move's
//! [`idempotency_key`](crate::model::Move::idempotency_key) is the same on every retry.
//!
//! These are the decisions, without I/O.

mod moves;
mod target;
#[cfg(test)]
mod tests;

pub use moves::{customer_move, moves};
pub use target::target;

use crate::model::StripePriceId;

/// What paused and unpaid subscriptions get in Stigg: Stripe no longer collects payment
/// for them, yet they are not over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SuspendedPolicy {
    /// Canceled at once, their entitlements revoked.
    #[default]
    Revoke,
    /// Left as they are in Stigg.
    Keep,
}

/// Why a Stripe subscription cannot be mirrored in Stigg. Retrying changes nothing until
/// the subscription or the catalog does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncFailure {
    #[error("price '{price_id}' maps to no plan code")]
    PriceWithoutPlan { price_id: StripePriceId },
    #[error("Stripe subscription status '{0}' is not one the sync knows")]
    UnknownStatus(String),
    #[error("the Stripe subscription is trialing without a trial end")]
    TrialWithoutEnd,
    #[error("the Stripe subscription cancels at period end but gives no period end")]
    PeriodEndMissing,
}
