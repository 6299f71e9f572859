//! The client-side rate limit: GCRA buckets per [`Operation`] and per mutated entity (see
//! [`crate::entity_limit`]), with reservations, kept in this process or shared by the whole
//! deployment ([`crate::budget`]).
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
//! **The interactive share.** Each operation's quota is split in two buckets: a reserve of
//! `interactive_share` percent for API requests ([`Caller::Interactive`]) and the rest. An API
//! request takes the earlier slot of the two, so while its traffic stays within the reserve
//! (and its bursts within the reserve's bank) it does not queue behind a batch. A batch or the sync worker ([`Caller::Background`]) books the
//! rest, and borrows a reserve call whenever the reserve has more than one banked, so with no
//! API traffic it still gets the whole quota, and an API request arriving finds a call free.
//!
//! The buckets live in the gateway (or in the shared store), so every user of one gateway
//! instance shares them.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use onboarding_adapters_http::Sleeper;

use crate::budget::{BudgetError, Choice, Draw, LocalBudget, SharedBudget, Take};
use crate::entity_limit::Entity;
use crate::{Operation, StiggConfig};

/// Calls a bucket banks: a hundredth of the minute's quota (about 0.6 s of calls), at least 3,
/// so pauses that short cost nothing. The quota gives up as many calls a minute, 1 %. Tiny
/// quotas bank nothing.
fn bank(calls_per_minute: u32) -> u32 {
    let bank = (calls_per_minute / 100).max(3);
    if calls_per_minute > 2 * bank { bank } else { 1 }
}

/// The arithmetic of a GCRA bucket of `n` calls a minute. Of burst `b` and period `p`, it lets
/// through at most `b + floor(W / p)` calls in a closed window of `W`, so with a period a
/// thousandth over `60 s / (n - b + 1)` even a window of 60.06 s holds at most `n`: a call may
/// reach Stigg up to 60 ms after its slot (a late timer, a busy host, another instance's
/// network path) without making any minute, as Stigg counts it, hold more than `n`. It costs
/// a thousandth of the quota.
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
        let exact = Duration::from_secs(60) / (n - burst + 1);
        // In whole microseconds, rounded up: the database keeps microseconds, so both stores
        // do the same arithmetic.
        let micros = (exact + exact / 1000).as_micros() + 1;
        let period = Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX));
        Self {
            period,
            tolerance: period * (burst - 1),
        }
    }

    /// The bucket as a store's draw under `key`.
    pub(crate) fn draw(self, key: &str) -> Draw {
        Draw {
            key: key.to_owned(),
            period: self.period,
            tolerance: self.tolerance,
        }
    }

    /// The same bucket seen by a borrower that must leave one call banked; `None` when it
    /// banks only one.
    fn keeping_one(self) -> Option<Self> {
        let tolerance = self.tolerance.checked_sub(self.period)?;
        Some(Self { tolerance, ..self })
    }

    /// Calls the bucket would let go at once when booked `ahead` of now.
    fn free(self, ahead: Duration) -> u32 {
        match self.tolerance.checked_sub(ahead) {
            None => 0,
            Some(spare) => {
                let calls = spare.as_nanos() / self.period.as_nanos().max(1) + 1;
                u32::try_from(calls).unwrap_or(u32::MAX)
            }
        }
    }
}

/// Who a call is for, which decides how it pays (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Caller {
    /// An API request: someone is waiting for the answer.
    #[default]
    Interactive,
    /// `reconcile`, the lifecycle sync's worker: a backlog that can wait its turn.
    Background,
}

impl Caller {
    /// The name in log fields and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interactive => "interactive",
            Self::Background => "background",
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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

/// Why a call got no slot.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    Deadline(WouldMissDeadline),
    /// The shared store did not answer.
    Store(BudgetError),
}

/// A slot taken: how long the call waited for it, and the operation's calls left at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Granted {
    pub(crate) waited: Duration,
    pub(crate) left: u32,
}

/// One operation's buckets, by key.
struct OperationKeys {
    main: String,
    reserve: String,
}

enum Store {
    Local(LocalBudget),
    Shared(Arc<dyn SharedBudget>),
}

pub(crate) struct RateLimiters {
    keys: [OperationKeys; Operation::ALL.len()],
    /// The operation's quota less the reserve.
    main: Gcra,
    /// The reserve for API requests; `None` with no share (or a quota too small to split).
    reserve: Option<Gcra>,
    /// The reserve as a batch may borrow it: leaving one call banked.
    borrow: Option<Gcra>,
    entity: Gcra,
    store: Store,
}

impl RateLimiters {
    /// The limiters `config` asks for, kept in `shared` when given, or why it cannot have
    /// them.
    pub(crate) fn for_config(
        config: &StiggConfig,
        shared: Option<Arc<dyn SharedBudget>>,
    ) -> Result<Self, &'static str> {
        if config.calls_per_minute == 0 {
            return Err("calls_per_minute must be at least 1");
        }
        if config.mutations_per_entity_per_minute == 0 {
            return Err("mutations_per_entity_per_minute must be at least 1");
        }
        if config.interactive_share_percent >= 100 {
            return Err("interactive_share_percent must be below 100");
        }
        let store = shared.map_or_else(|| Store::Local(LocalBudget::default()), Store::Shared);
        Ok(Self::new(
            config.calls_per_minute,
            config.interactive_share_percent,
            config.mutations_per_entity_per_minute,
            store,
        ))
    }

    fn new(calls_per_minute: u32, share_percent: u8, per_entity: u32, store: Store) -> Self {
        let reserved = (u64::from(calls_per_minute) * u64::from(share_percent) + 50) / 100;
        let reserved = u32::try_from(reserved)
            .unwrap_or(0)
            .min(calls_per_minute - 1);
        let reserve = (reserved > 0).then(|| Gcra::per_minute(reserved));
        Self {
            keys: Operation::ALL.map(|op| OperationKeys {
                main: format!("op:{}", op.bucket()),
                reserve: format!("op:{}:api", op.bucket()),
            }),
            main: Gcra::per_minute(calls_per_minute - reserved),
            borrow: reserve.and_then(Gcra::keeping_one),
            reserve,
            entity: Gcra::per_minute(per_entity),
            store,
        }
    }

    /// Takes a token for `operation`, and for `entity` when the call mutates one: reserves
    /// the next slot the caller may have and waits for it (through `sleeper`) when it comes
    /// before `deadline`; refuses at once, reserving nothing, when it comes later.
    pub(crate) async fn acquire(
        &self,
        operation: Operation,
        entity: Option<&Entity>,
        caller: Caller,
        deadline: Instant,
        sleeper: &dyn Sleeper,
    ) -> Result<Granted, Refusal> {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        let choices = self.choices(operation, entity, caller, left);
        let take = match &self.store {
            Store::Local(local) => local.take(&choices, now),
            // No wait runs past the deadline, the store's neither (a pool checkout, a row
            // lock, a connection gone quiet).
            Store::Shared(shared) => {
                match tokio::time::timeout(left, shared.take(&choices)).await {
                    Ok(took) => took.map_err(Refusal::Store)?,
                    Err(_) => {
                        let why = format!("no answer within the call's deadline ({left:?})");
                        return Err(Refusal::Store(BudgetError(why)));
                    }
                }
            }
        };
        let granted = self
            .judge(operation, entity, &take)
            .map_err(Refusal::Deadline)?;
        if !granted.waited.is_zero() {
            sleeper.sleep(granted.waited).await;
        }
        Ok(granted)
    }

    /// The ways `caller` may pay for one call of `operation`.
    fn choices(
        &self,
        operation: Operation,
        entity: Option<&Entity>,
        caller: Caller,
        max_wait: Duration,
    ) -> Vec<Choice> {
        let keys = &self.keys[operation.index()];
        let entity = entity.map(|entity| self.entity.draw(&entity.key()));
        let choice = |bucket: Draw, max_wait| Choice {
            draws: std::iter::once(bucket).chain(entity.clone()).collect(),
            max_wait,
        };
        let main = choice(self.main.draw(&keys.main), max_wait);
        match caller {
            Caller::Interactive => match self.reserve {
                Some(reserve) => vec![choice(reserve.draw(&keys.reserve), max_wait), main],
                None => vec![main],
            },
            Caller::Background => match self.borrow {
                // Only a call free at once is borrowed: a batch never queues on the reserve.
                Some(borrow) => vec![main, choice(borrow.draw(&keys.reserve), Duration::ZERO)],
                None => vec![main],
            },
        }
    }

    /// What a take means for the call: its wait, or the limit that refused it.
    fn judge(
        &self,
        operation: Operation,
        entity: Option<&Entity>,
        take: &Take,
    ) -> Result<Granted, WouldMissDeadline> {
        let keys = &self.keys[operation.index()];
        let ahead = |key: &str| {
            take.ahead
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, ahead)| *ahead)
        };
        if take.chosen.is_some() {
            let main = self.main.free(ahead(&keys.main).unwrap_or_default());
            // Counted when the take saw it (a batch that may not borrow does not).
            let reserve = match (self.reserve, ahead(&keys.reserve)) {
                (Some(reserve), Some(booked)) => reserve.free(booked),
                _ => 0,
            };
            return Ok(Granted {
                waited: take.wait,
                left: main + reserve,
            });
        }
        // The entity held the call back when its own next slot is no earlier than the one
        // refused.
        let entity_free_in = entity
            .and_then(|entity| ahead(&entity.key()))
            .map(|booked| booked.saturating_sub(self.entity.tolerance));
        let limit = match entity_free_in {
            Some(free_in) if free_in >= take.wait => Limit::Entity,
            _ => Limit::Operation,
        };
        Err(WouldMissDeadline {
            wait: take.wait,
            limit,
        })
    }

    #[cfg(test)]
    fn reserve(
        &self,
        operation: Operation,
        entity: Option<&Entity>,
        caller: Caller,
        now: Instant,
        deadline: Instant,
    ) -> Result<Instant, WouldMissDeadline> {
        let Store::Local(local) = &self.store else {
            unreachable!("tests of the arithmetic use the local store");
        };
        let choices = self.choices(
            operation,
            entity,
            caller,
            deadline.saturating_duration_since(now),
        );
        let take = local.take(&choices, now);
        self.judge(operation, entity, &take)
            .map(|granted| now + granted.waited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onboarding_adapters_http::TokioSleeper;

    const ASK: Caller = Caller::Interactive;

    /// Takes a token as an API request would, on the real clock.
    async fn ask(
        limiters: &RateLimiters,
        op: Operation,
        deadline: Instant,
    ) -> Result<(), WouldMissDeadline> {
        match limiters
            .acquire(op, None, ASK, deadline, &TokioSleeper)
            .await
        {
            Ok(_) => Ok(()),
            Err(Refusal::Deadline(refused)) => Err(refused),
            Err(Refusal::Store(error)) => panic!("no store in memory fails: {error}"),
        }
    }

    fn per_minute(n: u32) -> RateLimiters {
        limiters(n, u32::MAX)
    }

    /// No interactive share: one bucket per operation.
    fn limiters(per_operation: u32, per_entity: u32) -> RateLimiters {
        RateLimiters::new(
            per_operation,
            0,
            per_entity,
            Store::Local(LocalBudget::default()),
        )
    }

    fn shared_out(per_operation: u32, share: u8) -> RateLimiters {
        RateLimiters::new(
            per_operation,
            share,
            30,
            Store::Local(LocalBudget::default()),
        )
    }

    #[tokio::test]
    async fn refuses_at_once_when_the_next_token_is_past_the_deadline() {
        let limiters = per_minute(1);
        let deadline = Instant::now() + Duration::from_secs(5);
        let op = Operation::ProvisionCustomer;
        assert_eq!(ask(&limiters, op, deadline).await, Ok(()));
        let started = Instant::now();
        let refused = ask(&limiters, op, deadline).await;
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
            assert_eq!(ask(&limiters, op, deadline).await, Ok(()));
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(590), "{took:?}");
    }

    /// Takes a token whenever one is free at once over `minutes`, in steps of `step`, as
    /// `caller`, and returns the times (from the start) the calls went out.
    fn greedy(
        limiters: &RateLimiters,
        caller: Caller,
        minutes: u32,
        step: Duration,
    ) -> Vec<Duration> {
        let op = Operation::ProvisionCustomer;
        let start = Instant::now();
        let end = Duration::from_secs(60 * u64::from(minutes));
        let mut now = Duration::ZERO;
        let mut calls = Vec::new();
        while now < end {
            // Only a slot free at once is taken.
            let at = start + now;
            while limiters.reserve(op, None, caller, at, at) == Ok(at) {
                calls.push(now);
            }
            now += step;
        }
        calls
    }

    fn greedy_calls(n: u32, minutes: u32, step: Duration) -> Vec<Duration> {
        greedy(&per_minute(n), ASK, minutes, step)
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
        // rest of the quota, less the thousandth the period keeps as a margin. With a bank
        // of 2 the 11 ms caller would lose 1 %.
        for (n, step_ms) in [(6000, 11), (6000, 19), (6000, 500), (250, 450)] {
            let calls = greedy_calls(n, 2, Duration::from_millis(step_ms));
            let at_full_rate = 2 * (n - bank(n));
            let released = bank(n) + at_full_rate - at_full_rate.div_ceil(1000);
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
        let limiters = Arc::new(per_minute(600)); // 6 banked, then one every ~101 ms
        let deadline = Instant::now() + Duration::from_millis(500);
        let op = Operation::ProvisionCustomer;
        let callers = (0..40).map(|_| {
            let limiters = limiters.clone();
            tokio::spawn(async move {
                let asked = Instant::now();
                let outcome = ask(&limiters, op, deadline).await;
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
            assert_eq!(ask(&limiters, op, deadline).await, Ok(()), "{op}");
        }
        let create = ask(&limiters, Operation::CreateSubscription, deadline).await;
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
            assert_eq!(
                limiters.reserve(op, Some(&org), ASK, now, deadline),
                Ok(now)
            );
        }

        let refused =
            limiters.reserve(Operation::ProvisionCustomer, Some(&org), ASK, now, deadline);
        let refused = refused.err();
        assert_eq!(refused.map(|e| e.limit), Some(Limit::Entity));
        let wait = refused.map(|e| e.wait).unwrap_or_default();
        assert!(wait > Duration::from_secs(2), "{wait:?}");

        let other = customer("org_2");
        let op = Operation::ProvisionCustomer;
        assert_eq!(
            limiters.reserve(op, Some(&other), ASK, now, deadline),
            Ok(now)
        );
        assert_eq!(limiters.reserve(op, None, ASK, now, deadline), Ok(now));
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
        assert_eq!(limiters.reserve(op, Some(&sub), ASK, now, far), Ok(now));

        let held_back = limiters.reserve(op, Some(&sub), ASK, now, far);

        let slot = held_back.unwrap_or(now);
        assert!(slot > p(60) && slot < p(61), "{slot:?}");
        // Booked in the operation's bucket at that slot, not at the 30 s its own rate allowed:
        // the next call of the operation comes 30 s after it.
        let next = limiters.reserve(op, None, ASK, now, far).unwrap_or(now);
        assert!(next > p(90) && next < p(91), "{next:?}");
    }

    #[test]
    fn a_refused_call_books_nothing_in_either_bucket() {
        let limiters = limiters(2, 1);
        let now = Instant::now();
        let op = Operation::CancelSubscription;
        let sub = Entity::Subscription("sub_1".into());
        assert_eq!(limiters.reserve(op, Some(&sub), ASK, now, now), Ok(now));
        let later = now + Duration::from_secs(30);
        // The period is a thousandth over 30 s.
        let opened = later + Duration::from_millis(31);

        let refused = limiters.reserve(op, Some(&sub), ASK, later, later + Duration::from_secs(5));
        assert_eq!(refused.map_err(|e| e.limit), Err(Limit::Entity));

        // The operation's next slot is still the one its first call left (30 s on).
        let other = Entity::Subscription("sub_2".into());
        let next = limiters.reserve(
            op,
            Some(&other),
            ASK,
            opened,
            opened + Duration::from_secs(1),
        );
        assert_eq!(next, Ok(opened));

        // And the entity's next slot is still the one its first call left (60 s on): another
        // operation, with a bucket of its own, gets it then.
        let t = now + Duration::from_secs(61);
        let patch = limiters.reserve(
            Operation::PatchSubscription,
            Some(&sub),
            ASK,
            t,
            t + Duration::from_secs(1),
        );
        assert_eq!(patch, Ok(t));
    }

    #[test]
    fn with_no_api_traffic_a_batch_gets_the_whole_quota_and_no_more() {
        let limiters = shared_out(250, 20);
        let calls = greedy(&limiters, Caller::Background, 3, Duration::from_millis(1));
        assert!(busiest_minute(&calls) <= 250, "{}", busiest_minute(&calls));
        let minute = Duration::from_secs(60);
        let second_minute = calls
            .iter()
            .filter(|at| **at >= minute && **at < minute * 2)
            .count();
        assert!(
            second_minute >= 243,
            "{second_minute} calls in a minute of 250"
        );
    }

    /// A batch keeps the operation's main bucket booked ten seconds ahead while API requests
    /// come at the reserve's pace: none of them waits, and no minute holds more than the
    /// quota.
    #[test]
    fn an_api_request_within_the_share_never_queues_behind_a_batch() {
        let limiters = shared_out(250, 20);
        let op = Operation::ProvisionSubscription;
        let start = Instant::now();
        let mut calls = Vec::new();
        let mut api_waits = Vec::new();
        let mut next_api = Duration::ZERO;
        let step = Duration::from_millis(10);
        let mut now = Duration::ZERO;
        while now < Duration::from_secs(180) {
            let at = start + now;
            let batch_deadline = at + Duration::from_secs(10);
            while let Ok(slot) = limiters.reserve(op, None, Caller::Background, at, batch_deadline)
            {
                calls.push(slot - start);
            }
            if now >= next_api {
                let slot = limiters.reserve(op, None, ASK, at, at + Duration::from_secs(15));
                let slot = slot.unwrap_or(at + Duration::from_secs(99));
                api_waits.push(slot - at);
                calls.push(slot - start);
                next_api += Duration::from_millis(1300);
            }
            now += step;
        }
        calls.sort();
        assert!(busiest_minute(&calls) <= 250, "{}", busiest_minute(&calls));
        assert!(api_waits.len() > 130);
        assert!(api_waits.iter().all(Duration::is_zero), "{api_waits:?}");
    }

    #[tokio::test]
    async fn a_grant_tells_the_operations_calls_left_at_once() {
        // Main: 200 a minute, 3 banked; reserve: 50 a minute, 3 banked.
        let limiters = shared_out(250, 20);
        let deadline = Instant::now() + Duration::from_secs(1);
        let op = Operation::ArchiveCustomer;
        let lefts = [5, 4, 3, 2, 1, 0];
        for left in lefts {
            let granted = limiters
                .acquire(op, None, ASK, deadline, &TokioSleeper)
                .await;
            assert_eq!(
                granted.ok().map(|g| (g.waited.is_zero(), g.left)),
                Some((true, left))
            );
        }
    }

    #[test]
    fn a_quota_too_small_to_split_keeps_no_reserve() {
        let limiters = shared_out(2, 20);
        assert!(limiters.reserve.is_none());
        let limiters = shared_out(250, 0);
        assert!(limiters.reserve.is_none() && limiters.borrow.is_none());
        let config = StiggConfig {
            interactive_share_percent: 100,
            ..StiggConfig::new("http://localhost", "k")
        };
        assert!(RateLimiters::for_config(&config, None).is_err());
    }
}
