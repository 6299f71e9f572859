//! A hook for metrics: the adapter reports what happened to each call, and whoever wires the
//! service decides how to count it. No metrics crate is needed here.

use std::time::Duration;

use crate::{Caller, Operation};

/// What happened to one call (or one attempt, for [`CallOutcome::Retried`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// Stigg gave a usable answer. A create answered 409 counts as a success of the create;
    /// the read-back that follows reports its own outcome (a mismatch is a failure there).
    Success,
    /// An attempt failed transiently and another attempt will follow.
    Retried,
    /// The client-side rate limit refused the call before anything was sent.
    RateLimited,
    /// The call ended in an error (after retries, if any).
    Failed,
}

impl CallOutcome {
    /// The name to use as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Retried => "retried",
            Self::RateLimited => "rate_limited",
            Self::Failed => "failed",
        }
    }
}

/// One report to a [`CallObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallEvent {
    pub operation: Operation,
    pub outcome: CallOutcome,
    /// For `Retried`, how long the failed attempt took; otherwise the whole call, including
    /// retries, backoff and rate-limit waits.
    pub latency: Duration,
}

/// One take of the rate-limit budget (before each attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetEvent {
    pub operation: Operation,
    pub caller: Caller,
    /// From asking to the slot (or to the refusal).
    pub waited: Duration,
    /// `false`: refused (the slot came after the deadline, or the shared budget failed).
    pub granted: bool,
    /// Calls the operation could have sent at once after this take, as this take saw its
    /// buckets; `None` when refused.
    pub left: Option<u32>,
}

/// Receives one event per retried attempt and one per finished call, and one per take of the
/// rate-limit budget. Called inline on the request path, so implementations must be quick
/// and must not block.
pub trait CallObserver: Send + Sync {
    fn observe(&self, event: CallEvent);

    /// A take of the budget. Default: ignored.
    fn budget(&self, _event: BudgetEvent) {}
}

/// The default observer: ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoopObserver;

impl CallObserver for NoopObserver {
    fn observe(&self, _event: CallEvent) {}
}
