//! The client-side rate limit: one GCRA bucket (governor) per [`Operation`].
//!
//! Stigg allows 250 calls per minute per mutation and answers 429 beyond. Each bucket banks
//! `b` calls (see [`bank`]) and releases one every `60 s / (calls_per_minute - b + 1)`, so any
//! rolling minute holds at most `calls_per_minute` calls whatever window Stigg counts in, and
//! a batch (`reconcile`) runs at the quota without drawing 429s. The bank matters: a waiter's
//! timer fires up to a millisecond late, and a batch's own pipeline pauses now and then (a slow
//! commit, the next page of its backlog); without a bank every such moment is quota lost for
//! good (about a tenth of it at 6,000 calls a minute). Read-backs have buckets of their own:
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

/// Calls a bucket banks: a hundredth of the minute's quota (about 0.6 s of calls), at least 3,
/// so pauses that short cost nothing. The quota gives up as many calls a minute, 1 %. Tiny
/// quotas bank nothing.
fn bank(calls_per_minute: u32) -> u32 {
    let bank = (calls_per_minute / 100).max(3);
    if calls_per_minute > 2 * bank { bank } else { 1 }
}

/// The bucket shape for `calls_per_minute`. A GCRA bucket of burst `b` and period `p` lets
/// through at most `b + floor(60 s / p)` calls in a closed one-minute window, so the period is
/// a hair over `60 s / (n - b + 1)`: the minute's total stays `n`, for every `n`.
fn quota(calls_per_minute: NonZeroU32) -> Quota {
    let n = calls_per_minute.get();
    let burst = bank(n);
    let period = Duration::from_secs(60) / (n - burst + 1) + Duration::from_micros(1);
    // Both are at least 1: `bank` is 1 or less than half of `n`.
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
        .allow_burst(burst)
}

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
        let quota = quota(calls_per_minute);
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
    use governor::clock::FakeRelativeClock;

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
        let limiters = per_minute(203); // three banked, then one every 300 ms
        let deadline = Instant::now() + Duration::from_secs(5);
        let op = Operation::ProvisionSubscription;
        let started = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiters.acquire(op, deadline, &TokioSleeper).await, Ok(()));
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(590), "{took:?}");
    }

    /// Takes a token whenever one is free over `minutes`, in steps of `step`, and returns the
    /// times (from the start) the calls went out.
    fn greedy_calls(n: u32, minutes: u32, step: Duration) -> Vec<Duration> {
        let clock = FakeRelativeClock::default();
        let bucket = RateLimiter::direct_with_clock(
            quota(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)),
            clock.clone(),
        );
        let end = Duration::from_secs(60 * u64::from(minutes));
        let mut now = Duration::ZERO;
        let mut calls = Vec::new();
        while now < end {
            while bucket.check().is_ok() {
                calls.push(now);
            }
            clock.advance(step);
            now += step;
        }
        calls
    }

    /// Most calls in any closed one-minute window.
    fn busiest_minute(calls: &[Duration]) -> usize {
        let minute = Duration::from_secs(60);
        let mut most = 0;
        let mut first = 0;
        for (last, at) in calls.iter().enumerate() {
            while *at - calls[first] > minute {
                first += 1;
            }
            most = most.max(last + 1 - first);
        }
        most
    }

    #[test]
    fn no_minute_holds_more_than_the_quota() {
        for n in [1, 3, 6, 7, 8, 250, 6000] {
            // Whole milliseconds: a call due exactly on a minute's edge is taken on it.
            let calls = greedy_calls(n, 3, Duration::from_millis(1));
            let most = busiest_minute(&calls);
            assert!(most <= n as usize, "{n}/min: {most} in one minute");
        }
    }

    #[test]
    fn late_takers_still_get_the_whole_quota() {
        // A caller that comes back late for each token (a late timer), or only every 500 ms
        // (a pausing pipeline), still gets every call the bucket releases: the bank and the
        // rest of the quota. With a bank of 2 the 11 ms caller would lose 1 %.
        for (n, step_ms) in [(6000, 11), (6000, 19), (6000, 500), (250, 450)] {
            let calls = greedy_calls(n, 2, Duration::from_millis(step_ms));
            let released = bank(n) + 2 * (n - bank(n));
            // The calls released after the caller's last visit are not taken.
            let unvisited = step_ms * u64::from(n - bank(n)) / 60_000 + 1;
            assert!(
                calls.len() as u64 + unvisited >= u64::from(released),
                "{n}/min every {step_ms} ms: {} calls of {released}",
                calls.len()
            );
        }
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
