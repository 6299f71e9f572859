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
mod run;
mod target;
#[cfg(test)]
mod tests;

pub use moves::{customer_move, moves};
pub use run::{SyncFailed, SyncPorts, SyncSettings, SyncSubscription, Synced, call_name};
pub use target::target;

use crate::model::StripePriceId;
use crate::ports::{RepoError, StiggError, StripeError};

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

/// Why a sync run stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The database has no such subscription (yet: the trial story may commit after Stripe
    /// sent its first event).
    #[error("unknown subscription")]
    UnknownSubscription,
    /// Stripe's subscription cannot be mirrored as it is.
    #[error(transparent)]
    Decision(SyncFailure),
    /// The data does not allow the sync (a customer mismatch, an object Stripe does not
    /// have, a stored value that breaks its rule).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Stigg(#[from] StiggError),
    #[error(transparent)]
    Store(#[from] RepoError),
    /// Another holder took the subject's lease while this run was slow: it stopped before its
    /// next change.
    #[error("the subscription's lease was lost to another holder")]
    LeaseLost,
}

/// When a failed run is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryRule {
    /// Later, with backoff, until the horizon.
    Backoff,
    /// Later, with backoff, until the grace period for unknown subscriptions ends.
    WithinGrace,
    /// Not until someone changes something.
    Never,
}

impl SyncError {
    pub fn retry_rule(&self) -> RetryRule {
        match self {
            Self::UnknownSubscription => RetryRule::WithinGrace,
            Self::Decision(_) | Self::Refused(_) => RetryRule::Never,
            Self::Stripe(error) if error.is_transient() => RetryRule::Backoff,
            Self::Stripe(_) => RetryRule::Never,
            Self::Stigg(
                StiggError::Unavailable { .. }
                | StiggError::RateLimited
                | StiggError::DeadlinePassed,
            ) => RetryRule::Backoff,
            Self::Stigg(_) => RetryRule::Never,
            Self::Store(_) | Self::LeaseLost => RetryRule::Backoff,
        }
    }
}
