//! The client-side rate limit: one GCRA bucket per [`Operation`], with reservations.
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
//! A caller is answered at the moment it asks: it reserves the next free slot and sleeps
//! until then, or, when that slot comes after its deadline, is refused at once and reserves
//! nothing. (A check-then-sleep bucket such as governor's lets every waiter sleep towards the
//! same token and decide again on waking: under a burst most of them were refused only at
//! their deadline.) Reservations are taken in the order callers ask.
//!
//! The buckets live in the gateway, so every user of one gateway instance shares them.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::Operation;
use crate::retry::Sleeper;

/// Calls a bucket banks: a hundredth of the minute's quota (about 0.6 s of calls), at least 3,
/// so pauses that short cost nothing. The quota gives up as many calls a minute, 1 %. Tiny
/// quotas bank nothing.
fn bank(calls_per_minute: u32) -> u32 {
    let bank = (calls_per_minute / 100).max(3);
    if calls_per_minute > 2 * bank { bank } else { 1 }
}

/// A GCRA bucket with reservations. Of burst `b` and period `p`, it lets through at most
/// `b + floor(60 s / p)` calls in a closed one-minute window, so the period is a hair over
/// `60 s / (n - b + 1)`: the minute's total stays `n`, for every `n`.
struct Bucket {
    period: Duration,
    /// How far ahead of the theoretical arrival time a call may go: `(b - 1) * p`.
    tolerance: Duration,
    /// The theoretical arrival time of the next call; `None` before the first.
    next: Mutex<Option<Instant>>,
}

impl Bucket {
    fn new(calls_per_minute: u32) -> Self {
        let n = calls_per_minute.max(1);
        let burst = bank(n);
        let period = Duration::from_secs(60) / (n - burst + 1) + Duration::from_micros(1);
        Self {
            period,
            tolerance: period * (burst - 1),
            next: Mutex::new(None),
        }
    }

    /// Reserves the first slot at or after `now` and returns it, or, when that slot is after
    /// `deadline`, reserves nothing and says how long the wait would have been.
    fn reserve(&self, now: Instant, deadline: Instant) -> Result<Instant, Duration> {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let arrival = next.map_or(now, |at| at.max(now));
        let slot = arrival
            .checked_sub(self.tolerance)
            .map_or(now, |at| at.max(now));
        if slot > now && slot >= deadline {
            return Err(slot - now);
        }
        *next = Some(arrival + self.period);
        Ok(slot)
    }
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
    pub(crate) fn new(calls_per_minute: std::num::NonZeroU32) -> Self {
        Self {
            buckets: Operation::ALL.map(|_| Bucket::new(calls_per_minute.get())),
        }
    }

    /// Takes a token for `operation`: reserves the next slot and waits for it (through
    /// `sleeper`) when it comes before `deadline`; refuses at once, reserving nothing, when it
    /// comes later.
    pub(crate) async fn acquire(
        &self,
        operation: Operation,
        deadline: Instant,
        sleeper: &dyn Sleeper,
    ) -> Result<(), WouldMissDeadline> {
        let now = Instant::now();
        let slot = self.buckets[operation.index()]
            .reserve(now, deadline)
            .map_err(|wait| WouldMissDeadline { wait })?;
        if slot > now {
            sleeper.sleep(slot - now).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

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

    /// Takes a token whenever one is free at once over `minutes`, in steps of `step`, and
    /// returns the times (from the start) the calls went out.
    fn greedy_calls(n: u32, minutes: u32, step: Duration) -> Vec<Duration> {
        let bucket = Bucket::new(n);
        let start = Instant::now();
        let end = Duration::from_secs(60 * u64::from(minutes));
        let mut now = Duration::ZERO;
        let mut calls = Vec::new();
        while now < end {
            // A deadline of now: only a slot free at once is taken.
            while bucket.reserve(start + now, start + now) == Ok(start + now) {
                calls.push(now);
            }
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

    /// Under a burst every caller learns at once whether it gets a slot: the refused ones
    /// never wait, the admitted ones wait for their own slot only.
    #[tokio::test]
    async fn a_burst_is_decided_at_the_moment_of_asking() {
        let limiters = std::sync::Arc::new(per_minute(600)); // 6 banked, then one every ~101 ms
        let deadline = Instant::now() + Duration::from_millis(500);
        let op = Operation::ProvisionCustomer;
        let callers = (0..40).map(|_| {
            let limiters = limiters.clone();
            tokio::spawn(async move {
                let asked = Instant::now();
                let outcome = limiters.acquire(op, deadline, &TokioSleeper).await;
                (outcome.is_ok(), asked.elapsed())
            })
        });
        let mut admitted = 0;
        for caller in callers {
            let (ok, took) = caller.await.expect("the caller task finishes");
            if ok {
                admitted += 1;
                assert!(took < Duration::from_millis(520), "admitted after {took:?}");
            } else {
                assert!(took < Duration::from_millis(50), "refused after {took:?}");
            }
        }
        // The bank and the slots before the deadline: 6 + 4.
        assert!((9..=11).contains(&admitted), "{admitted} admitted");
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
