//! Where the rate-limit buckets live: in this process ([`LocalBudget`]), or shared by every
//! instance of a deployment ([`SharedBudget`], PostgreSQL in production), since Stigg's quota
//! belongs to the API key, not to a process.
//!
//! Both answer the same question the same way. A call offers one or more [`Choice`]s (ways
//! to pay for it: an API request from its operation's reserved share or from the rest, with
//! its customer's or subscription's bucket); the earliest slot any choice allows within its
//! wait is booked in every bucket of that choice (the first choice on a tie), and nothing is
//! booked when none fits. Buckets are GCRA ([`crate::rate_limit::Gcra`]): a bucket's state is
//! its theoretical arrival time (TAT).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// One bucket a choice draws from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draw {
    /// e.g. `op:provision_customer`, `op:provision_customer:api`, `customer:org_1`.
    pub key: String,
    /// One call every `period` in the long run.
    pub period: Duration,
    /// How far ahead of its TAT a call may go: `(burst - 1) * period`.
    pub tolerance: Duration,
}

impl Draw {
    /// The first slot at or after `now` that the bucket, at `tat`, lets a call take.
    pub(crate) fn slot(&self, tat: Option<Instant>, now: Instant) -> Instant {
        tat.and_then(|at| at.checked_sub(self.tolerance))
            .map_or(now, |at| at.max(now))
    }

    /// The bucket's TAT once a call took `slot` (at or after [`Draw::slot`]).
    pub(crate) fn after(&self, tat: Option<Instant>, slot: Instant) -> Instant {
        tat.map_or(slot, |at| at.max(slot)) + self.period
    }
}

/// One way to pay for a call: a slot that every bucket of `draws` allows, within `max_wait`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub draws: Vec<Draw>,
    pub max_wait: Duration,
}

/// What a take booked.
#[derive(Debug, Clone, PartialEq)]
pub struct Take {
    /// The choice booked (index into the choices offered); `None`: none fitted its wait, and
    /// nothing was booked.
    pub chosen: Option<usize>,
    /// How long until the booked slot; when refused, until the earliest slot of a choice
    /// that may wait.
    pub wait: Duration,
    /// How far each bucket drawn from is booked ahead of now, after the take.
    pub ahead: Vec<(String, Duration)>,
}

/// The shared store could not answer (the database is down, say). The message names no
/// secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the shared Stigg budget is unavailable: {0}")]
pub struct BudgetError(pub String);

/// Buckets shared by every instance of a deployment, timed by one clock (the store's).
#[async_trait]
pub trait SharedBudget: Send + Sync {
    /// Books the earliest slot one of `choices` allows within its wait, atomically across
    /// instances.
    async fn take(&self, choices: &[Choice]) -> Result<Take, BudgetError>;
}

/// How often idle buckets are dropped from a [`LocalBudget`].
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The buckets of one process, timed by its monotonic clock. Memory follows the buckets used
/// in the last minute or two: a bucket whose TAT has passed behaves as one never used, so
/// once a minute such buckets are dropped.
#[derive(Debug, Default)]
pub(crate) struct LocalBudget {
    state: Mutex<LocalState>,
}

#[derive(Debug, Default)]
struct LocalState {
    tats: HashMap<String, Instant>,
    next_sweep: Option<Instant>,
}

impl LocalBudget {
    /// [`SharedBudget::take`], in memory, at `now`.
    pub(crate) fn take(&self, choices: &[Choice], now: Instant) -> Take {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.next_sweep.is_none_or(|due| now >= due) {
            state.tats.retain(|_, tat| *tat > now);
            state.next_sweep = Some(now + SWEEP_EVERY);
        }
        let tats = &mut state.tats;
        let slots: Vec<Instant> = choices
            .iter()
            .map(|choice| {
                choice.draws.iter().fold(now, |slot, draw| {
                    slot.max(draw.slot(tats.get(draw.key.as_str()).copied(), now))
                })
            })
            .collect();
        let mut chosen: Option<usize> = None;
        for (index, (choice, slot)) in choices.iter().zip(&slots).enumerate() {
            let fits = *slot <= now + choice.max_wait;
            if fits && chosen.is_none_or(|best| *slot < slots[best]) {
                chosen = Some(index);
            }
        }
        if let Some(index) = chosen {
            let slot = slots[index];
            for draw in &choices[index].draws {
                match tats.get_mut(draw.key.as_str()) {
                    Some(held) => *held = draw.after(Some(*held), slot),
                    None => {
                        tats.insert(draw.key.clone(), draw.after(None, slot));
                    }
                }
            }
        }
        // Refused: the earliest slot of a choice that may wait at all (one that must go at
        // once says nothing about when the call could go).
        let may_wait = choices
            .iter()
            .zip(&slots)
            .filter(|(c, _)| !c.max_wait.is_zero());
        let wait = match chosen {
            Some(index) => slots[index],
            None => may_wait
                .map(|(_, slot)| *slot)
                .min()
                .or_else(|| slots.iter().copied().min())
                .unwrap_or(now),
        } - now;
        let mut ahead: Vec<(String, Duration)> = choices
            .iter()
            .flat_map(|choice| &choice.draws)
            .map(|draw| {
                let at = tats.get(draw.key.as_str()).copied().unwrap_or(now);
                (draw.key.clone(), at.saturating_duration_since(now))
            })
            .collect();
        ahead.sort_by(|a, b| a.0.cmp(&b.0));
        ahead.dedup_by(|a, b| a.0 == b.0);
        Take {
            chosen,
            wait,
            ahead,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tats
            .len()
    }
}

#[cfg(test)]
mod tests {
    //! The same cases as the PostgreSQL store's (`adapters-db`, `rate_buckets`), on a fake
    //! clock: both stores must book alike.
    use super::*;

    fn draw(key: &str, period_ms: u64, tolerance_ms: u64) -> Draw {
        Draw {
            key: key.to_owned(),
            period: Duration::from_millis(period_ms),
            tolerance: Duration::from_millis(tolerance_ms),
        }
    }

    fn choice(draws: &[&Draw], max_wait_ms: u64) -> Choice {
        Choice {
            draws: draws.iter().map(|d| (*d).clone()).collect(),
            max_wait: Duration::from_millis(max_wait_ms),
        }
    }

    struct Clock(Instant);

    impl Clock {
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    fn ms(wait: Duration) -> u128 {
        wait.as_millis()
    }

    #[test]
    fn a_bucket_spaces_slots_by_its_period_and_refuses_past_the_wait() {
        let (budget, clock) = (LocalBudget::default(), Clock(Instant::now()));
        let op = draw("op:test", 100, 0);
        let within_1s = [choice(&[&op], 1000)];
        let first = budget.take(&within_1s, clock.at(0));
        assert_eq!((first.chosen, ms(first.wait)), (Some(0), 0));
        assert_eq!(
            first.ahead,
            vec![("op:test".to_owned(), Duration::from_millis(100))]
        );
        assert_eq!(ms(budget.take(&within_1s, clock.at(0)).wait), 100);
        assert_eq!(ms(budget.take(&within_1s, clock.at(50)).wait), 150);
        let refused = budget.take(&[choice(&[&op], 100)], clock.at(50));
        assert_eq!((refused.chosen, ms(refused.wait)), (None, 250));
        assert_eq!(ms(budget.take(&within_1s, clock.at(50)).wait), 250);
        let banked = draw("op:test", 100, 200);
        let three_at_once = [choice(&[&banked], 0)];
        for _ in 0..3 {
            assert_eq!(
                budget.take(&three_at_once, clock.at(10_000)).chosen,
                Some(0)
            );
        }
        assert_eq!(budget.take(&three_at_once, clock.at(10_000)).chosen, None);
        let other = draw("customer:org_1", 100, 0);
        let other = budget.take(&[choice(&[&other], 0)], clock.at(10_000));
        assert_eq!(other.chosen, Some(0));
    }

    #[test]
    fn the_earliest_choice_within_its_wait_is_booked_and_only_its_buckets() {
        let (budget, clock) = (LocalBudget::default(), Clock(Instant::now()));
        let main = draw("op:p", 100, 0);
        let reserve = draw("op:p:api", 400, 0);
        let entity = draw("customer:org_1", 1000, 0);
        let reserve_then_main = [
            choice(&[&reserve, &entity], 5000),
            choice(&[&main, &entity], 5000),
        ];
        let first = budget.take(&reserve_then_main, clock.at(0));
        assert_eq!((first.chosen, ms(first.wait)), (Some(0), 0));
        let keys: Vec<_> = first
            .ahead
            .iter()
            .map(|(k, d)| (k.as_str(), ms(*d)))
            .collect();
        assert_eq!(
            keys,
            vec![("customer:org_1", 1000), ("op:p", 0), ("op:p:api", 400)]
        );
        let second = budget.take(&reserve_then_main, clock.at(0));
        assert_eq!((second.chosen, ms(second.wait)), (Some(0), 1000));
        let plain = [choice(&[&reserve], 5000), choice(&[&main], 5000)];
        let third = budget.take(&plain, clock.at(0));
        assert_eq!((third.chosen, ms(third.wait)), (Some(1), 0));
        for _ in 0..20 {
            budget.take(&[choice(&[&main], 5000)], clock.at(1400));
        }
        let borrow_now = [choice(&[&main], 5000), choice(&[&reserve], 0)];
        let fourth = budget.take(&borrow_now, clock.at(1400));
        assert_eq!((fourth.chosen, ms(fourth.wait)), (Some(1), 0));
        let fifth = budget.take(&borrow_now, clock.at(1400));
        assert_eq!((fifth.chosen, ms(fifth.wait)), (Some(0), 2000));
    }

    #[test]
    fn idle_buckets_are_dropped_at_the_next_sweep_and_busy_ones_kept() {
        let (budget, clock) = (LocalBudget::default(), Clock(Instant::now()));
        let idle = [choice(&[&draw("customer:idle", 2000, 0)], 0)];
        let busy = [choice(&[&draw("customer:busy", 2000, 0)], 120_000)];
        budget.take(&idle, clock.at(0));
        for _ in 0..40 {
            budget.take(&busy, clock.at(0));
        }
        assert_eq!(budget.len(), 2);
        // 30 s on: no sweep yet.
        budget.take(&[], clock.at(30_000));
        assert_eq!(budget.len(), 2, "swept early");
        // A minute on, the idle bucket's call is long released; the busy one has calls
        // booked 80 s ahead.
        budget.take(&[], clock.at(60_000));
        assert_eq!(budget.len(), 1);
        let again = budget.take(&idle, clock.at(60_000));
        assert_eq!((again.chosen, again.wait), (Some(0), Duration::ZERO));
    }
}
