//! The client-side rate limit: one GCRA bucket (governor) per [`Operation`].
//!
//! Stigg allows 250 calls per minute per mutation and answers 429 beyond. Each bucket
//! releases one call every `60 s / calls_per_minute` with no burst, so any rolling minute
//! holds at most `calls_per_minute` calls whatever window Stigg counts in, and a batch
//! (`reconcile`) runs at the quota without drawing 429s. Read-backs have buckets of their own:
//! Stigg counts reads apart from mutations (with higher limits), and a wave of 409s must not
//! eat the creates' budget.
//!
//! The buckets live in the gateway, so every user of one gateway instance shares them.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::Operation;
use crate::retry::Sleeper;

type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

/// The next call would have to wait past its deadline for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WouldMissDeadline {
    pub(crate) wait: Duration,
}

pub(crate) struct RateLimiters {
    buckets: [Bucket; Operation::ALL.len()],
}

impl RateLimiters {
    pub(crate) fn new(calls_per_minute: NonZeroU32) -> Self {
        let quota = Quota::per_minute(calls_per_minute).allow_burst(NonZeroU32::MIN);
        Self {
            buckets: Operation::ALL.map(|_| RateLimiter::direct(quota)),
        }
    }

    /// Takes a token for `operation`, waiting (through `sleeper`) when the next one is due
    /// before `deadline`, and refusing at once, without waiting, when it is due later.
    pub(crate) async fn acquire(
        &self,
        operation: Operation,
        deadline: Instant,
        sleeper: &dyn Sleeper,
    ) -> Result<(), WouldMissDeadline> {
        let bucket = &self.buckets[operation.index()];
        loop {
            let not_until = match bucket.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => not_until,
            };
            let wait = not_until.wait_time_from(bucket.clock().now());
            let ready_at = Instant::now().checked_add(wait);
            if ready_at.is_none_or(|at| at >= deadline) {
                return Err(WouldMissDeadline { wait });
            }
            // Another caller may take the token first; then we check again.
            sleeper.sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::TokioSleeper;

    fn per_minute(n: u32) -> RateLimiters {
        RateLimiters::new(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
    }

    #[tokio::test]
    async fn refuses_at_once_when_the_next_token_is_past_the_deadline() {
        let limiters = per_minute(1);
        let deadline = Instant::now() + Duration::from_secs(5);
        let op = Operation::ProvisionCustomer;
        assert_eq!(limiters.acquire(op, deadline, &TokioSleeper).await, Ok(()));
        let started = Instant::now();
        let refused = limiters.acquire(op, deadline, &TokioSleeper).await;
        assert!(started.elapsed() < Duration::from_millis(100));
        let wait = refused.err().map(|e| e.wait).unwrap_or_default();
        assert!(wait > Duration::from_secs(55), "{wait:?}");
    }

    #[tokio::test]
    async fn waits_when_the_next_token_comes_before_the_deadline() {
        let limiters = per_minute(600); // one every 100 ms
        let deadline = Instant::now() + Duration::from_secs(5);
        let op = Operation::ProvisionSubscription;
        let started = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiters.acquire(op, deadline, &TokioSleeper).await, Ok(()));
        }
        assert!(started.elapsed() >= Duration::from_millis(190));
    }

    #[tokio::test]
    async fn operations_have_separate_buckets() {
        let limiters = per_minute(1);
        let deadline = Instant::now() + Duration::from_secs(1);
        for op in Operation::ALL {
            assert_eq!(
                limiters.acquire(op, deadline, &TokioSleeper).await,
                Ok(()),
                "{op}"
            );
        }
    }
}
