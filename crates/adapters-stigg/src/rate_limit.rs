//! The client-side rate limit: one GCRA bucket per [`Operation`], one per mutated entity
//! (see [`crate::entity_limit`]), with reservations.
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
//! their deadline.) Reservations are taken in the order callers ask. A mutation takes one
//! slot in its operation's bucket and in its entity's at once: the later of the two slots,
//! booked in both, so neither bucket counts the call at a time it is not sent.
//!
//! The buckets live in the gateway, so every user of one gateway instance shares them.

use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use onboarding_adapters_http::Sleeper;

use crate::entity_limit::{Entity, EntityBuckets};
use crate::{Operation, StiggConfig};

/// Calls a bucket banks: a hundredth of the minute's quota (about 0.6 s of calls), at least 3,
/// so pauses that short cost nothing. The quota gives up as many calls a minute, 1 %. Tiny
/// quotas bank nothing.
fn bank(calls_per_minute: u32) -> u32 {
    let bank = (calls_per_minute / 100).max(3);
    if calls_per_minute > 2 * bank { bank } else { 1 }
}

/// The arithmetic of a GCRA bucket of `n` calls a minute. Of burst `b` and period `p`, it lets
/// through at most `b + floor(60 s / p)` calls in a closed one-minute window, so the period is
/// a hair over `60 s / (n - b + 1)`: the minute's total stays `n`, for every `n`.
///
/// A bucket's state is its theoretical arrival time (TAT): when the next call would be due at
/// the steady rate; `None` before the first call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gcra {
    period: Duration,
    /// How far ahead of the theoretical arrival time a call may go: `(b - 1) * p`.
    tolerance: Duration,
}

impl Gcra {
    pub(crate) fn per_minute(calls_per_minute: u32) -> Self {
        let n = calls_per_minute.max(1);
        let burst = bank(n);
        let period = Duration::from_secs(60) / (n - burst + 1) + Duration::from_micros(1);
        Self {
            period,
            tolerance: period * (burst - 1),
        }
    }

    /// The first slot at or after `now` that a bucket at `tat` lets a call take.
    pub(crate) fn slot(self, tat: Option<Instant>, now: Instant) -> Instant {
        let arrival = tat.map_or(now, |at| at.max(now));
        arrival
            .checked_sub(self.tolerance)
            .map_or(now, |at| at.max(now))
    }

    /// The bucket's TAT once a call took `slot` (at or after [`Gcra::slot`]).
    pub(crate) fn after(self, tat: Option<Instant>, slot: Instant) -> Instant {
        tat.map_or(slot, |at| at.max(slot)) + self.period
    }
}

/// One operation's bucket.
struct Bucket {
    gcra: Gcra,
    tat: Mutex<Option<Instant>>,
}

/// Which limit would have made the call wait past its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    Operation,
    Entity,
}

impl Limit {
    /// The name in log fields.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Operation => "per_operation",
            Self::Entity => "per_entity",
        }
    }
}

/// The next call would have to wait past its deadline for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WouldMissDeadline {
    pub(crate) wait: Duration,
    pub(crate) limit: Limit,
}

pub(crate) struct RateLimiters {
    buckets: [Bucket; Operation::ALL.len()],
    entities: EntityBuckets,
}

impl RateLimiters {
    /// The limiters `config` asks for, or why it cannot have them.
    pub(crate) fn for_config(config: &StiggConfig) -> Result<Self, &'static str> {
        let at_least_one = |n, why| NonZeroU32::new(n).ok_or(why);
        Ok(Self::new(
            at_least_one(
                config.calls_per_minute,
                "calls_per_minute must be at least 1",
            )?,
            at_least_one(
                config.mutations_per_entity_per_minute,
                "mutations_per_entity_per_minute must be at least 1",
            )?,
        ))
    }

    fn new(calls_per_minute: NonZeroU32, mutations_per_entity: NonZeroU32) -> Self {
        Self {
            buckets: Operation::ALL.map(|_| Bucket {
                gcra: Gcra::per_minute(calls_per_minute.get()),
                tat: Mutex::new(None),
            }),
            entities: EntityBuckets::new(Gcra::per_minute(mutations_per_entity.get())),
        }
    }

    /// Takes a token for `operation`, and for `entity` when the call mutates one: reserves
    /// the next slot both allow and waits for it (through `sleeper`) when it comes before
    /// `deadline`; refuses at once, reserving nothing, when it comes later.
    pub(crate) async fn acquire(
        &self,
        operation: Operation,
        entity: Option<&Entity>,
        deadline: Instant,
        sleeper: &dyn Sleeper,
    ) -> Result<(), WouldMissDeadline> {
        let now = Instant::now();
        let slot = self.reserve(operation, entity, now, deadline)?;
        if slot > now {
            sleeper.sleep(slot - now).await;
        }
        Ok(())
    }

    fn reserve(
        &self,
        operation: Operation,
        entity: Option<&Entity>,
        now: Instant,
        deadline: Instant,
    ) -> Result<Instant, WouldMissDeadline> {
        let bucket = &self.buckets[operation.bucket().index()];
        // Always the operation's lock first, then the entities': no two callers can wait on
        // each other.
        let mut tat = bucket.tat.lock().unwrap_or_else(PoisonError::into_inner);
        let operation_slot = bucket.gcra.slot(*tat, now);
        let mut entities = entity.map(|entity| (entity, self.entities.lock(now)));
        let entity_slot = entities
            .as_ref()
            .map(|(entity, held)| self.entities.gcra().slot(held.tat(entity), now));
        let (slot, limit) = match entity_slot {
            Some(at) if at > operation_slot => (at, Limit::Entity),
            _ => (operation_slot, Limit::Operation),
        };
        if slot > now && slot >= deadline {
            return Err(WouldMissDeadline {
                wait: slot - now,
                limit,
            });
        }
        *tat = Some(bucket.gcra.after(*tat, slot));
        if let Some((entity, held)) = entities.as_mut() {
            let next = self.entities.gcra().after(held.tat(entity), slot);
            held.set(entity, next);
        }
        Ok(slot)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use onboarding_adapters_http::TokioSleeper;

    fn per_minute(n: u32) -> RateLimiters {
        limiters(n, u32::MAX)
    }

    fn limiters(per_operation: u32, per_entity: u32) -> RateLimiters {
        let at_least_one = |n| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        RateLimiters::new(at_least_one(per_operation), at_least_one(per_entity))
    }

    #[tokio::test]
    async fn refuses_at_once_when_the_next_token_is_past_the_deadline() {
        let limiters = per_minute(1);
        let deadline = Instant::now() + Duration::from_secs(5);
        let op = Operation::ProvisionCustomer;
        assert_eq!(
            limiters.acquire(op, None, deadline, &TokioSleeper).await,
            Ok(())
        );
        let started = Instant::now();
        let refused = limiters.acquire(op, None, deadline, &TokioSleeper).await;
        assert!(started.elapsed() < Duration::from_millis(100));
        let refused = refused.err();
        assert_eq!(refused.map(|e| e.limit), Some(Limit::Operation));
        let wait = refused.map(|e| e.wait).unwrap_or_default();
        assert!(wait > Duration::from_secs(55), "{wait:?}");
    }

    #[tokio::test]
    async fn waits_when_the_next_token_comes_before_the_deadline() {
        let limiters = per_minute(203); // three banked, then one every 300 ms
        let deadline = Instant::now() + Duration::from_secs(5);
        let op = Operation::ProvisionSubscription;
        let started = Instant::now();
        for _ in 0..5 {
            assert_eq!(
                limiters.acquire(op, None, deadline, &TokioSleeper).await,
                Ok(())
            );
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(590), "{took:?}");
    }

    /// Takes a token whenever one is free at once over `minutes`, in steps of `step`, and
    /// returns the times (from the start) the calls went out.
    fn greedy_calls(n: u32, minutes: u32, step: Duration) -> Vec<Duration> {
        let gcra = Gcra::per_minute(n);
        let start = Instant::now();
        let end = Duration::from_secs(60 * u64::from(minutes));
        let mut tat = None;
        let mut now = Duration::ZERO;
        let mut calls = Vec::new();
        while now < end {
            // Only a slot free at once is taken.
            while gcra.slot(tat, start + now) == start + now {
                tat = Some(gcra.after(tat, start + now));
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
                let outcome = limiters.acquire(op, None, deadline, &TokioSleeper).await;
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
    async fn operations_have_separate_buckets_but_the_two_subscription_creates() {
        let limiters = per_minute(1);
        let deadline = Instant::now() + Duration::from_secs(1);
        for op in Operation::ALL.into_iter().filter(|op| op.bucket() == *op) {
            assert_eq!(
                limiters.acquire(op, None, deadline, &TokioSleeper).await,
                Ok(()),
                "{op}"
            );
        }
        let create = limiters
            .acquire(Operation::CreateSubscription, None, deadline, &TokioSleeper)
            .await;
        assert_eq!(create.map_err(|e| e.limit), Err(Limit::Operation));
    }

    fn customer(id: &str) -> Entity {
        Entity::Customer(id.to_owned())
    }

    #[test]
    fn an_entity_is_limited_across_operations_and_apart_from_other_entities() {
        let limiters = limiters(6000, 30); // per entity: three banked, then one every ~2.14 s
        let now = Instant::now();
        let deadline = now + Duration::from_secs(1);
        let org = customer("org_1");
        for op in [
            Operation::ProvisionCustomer,
            Operation::CreateSubscription,
            Operation::ArchiveCustomer,
        ] {
            assert_eq!(limiters.reserve(op, Some(&org), now, deadline), Ok(now));
        }

        let refused = limiters.reserve(Operation::ProvisionCustomer, Some(&org), now, deadline);
        let refused = refused.err();
        assert_eq!(refused.map(|e| e.limit), Some(Limit::Entity));
        let wait = refused.map(|e| e.wait).unwrap_or_default();
        assert!(wait > Duration::from_secs(2), "{wait:?}");

        let other = customer("org_2");
        let op = Operation::ProvisionCustomer;
        assert_eq!(limiters.reserve(op, Some(&other), now, deadline), Ok(now));
        assert_eq!(limiters.reserve(op, None, now, deadline), Ok(now));
    }

    #[test]
    fn a_call_held_back_by_its_entity_is_booked_at_its_real_time_in_the_operations_bucket() {
        // Per operation: one every 30 s; per entity: one a minute.
        let limiters = limiters(2, 1);
        let now = Instant::now();
        let far = now + Duration::from_secs(600);
        let op = Operation::PatchSubscription;
        let sub = Entity::Subscription("sub_1".into());
        let p = |secs| now + Duration::from_secs(secs);
        assert_eq!(limiters.reserve(op, Some(&sub), now, far), Ok(now));

        let held_back = limiters.reserve(op, Some(&sub), now, far);

        let slot = held_back.unwrap_or(now);
        assert!(slot > p(60) && slot < p(61), "{slot:?}");
        // Booked in the operation's bucket at that slot, not at the 30 s its own rate allowed:
        // the next call of the operation comes 30 s after it.
        let next = limiters.reserve(op, None, now, far).unwrap_or(now);
        assert!(next > p(90) && next < p(91), "{next:?}");
    }

    #[test]
    fn a_refused_call_books_nothing_in_either_bucket() {
        let limiters = limiters(2, 1);
        let now = Instant::now();
        let op = Operation::CancelSubscription;
        let sub = Entity::Subscription("sub_1".into());
        assert_eq!(limiters.reserve(op, Some(&sub), now, now), Ok(now));
        let later = now + Duration::from_secs(30);
        let opened = later + Duration::from_millis(1);

        let refused = limiters.reserve(op, Some(&sub), later, later + Duration::from_secs(5));
        assert_eq!(refused.map_err(|e| e.limit), Err(Limit::Entity));

        // The operation's next slot is still the one its first call left (30 s on).
        let other = Entity::Subscription("sub_2".into());
        let next = limiters.reserve(op, Some(&other), opened, opened + Duration::from_secs(1));
        assert_eq!(next, Ok(opened));

        // And the entity's next slot is still the one its first call left (60 s on): another
        // operation, with a bucket of its own, gets it then.
        let t = now + Duration::from_secs(61);
        let patch = limiters.reserve(
            Operation::PatchSubscription,
            Some(&sub),
            t,
            t + Duration::from_secs(1),
        );
        assert_eq!(patch, Ok(t));
    }
}
