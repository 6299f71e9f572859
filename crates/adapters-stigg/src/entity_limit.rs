//! The per-entity limit: Stigg allows 30 mutations a minute on one customer, and on one
//! subscription, whichever endpoints they go through (customer routes and subscription
//! creates count against the customer, a subscription's patch and cancel against the
//! subscription), and answers 429 beyond. The client keeps one GCRA bucket per entity it
//! mutated lately, next to the per-operation ones ([`crate::rate_limit`]).
//!
//! A bucket whose theoretical arrival time has passed behaves as one never used, so it is
//! dropped: once a minute the whole map is swept, and memory follows the entities mutated
//! in the last minute or two, not every entity ever seen.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::rate_limit::Gcra;

/// How often idle buckets are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What a mutation counts against. Customer and subscription ids live apart: an
/// organization id may read like a subscription id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Entity {
    Customer(String),
    Subscription(String),
}

pub(crate) struct EntityBuckets {
    gcra: Gcra,
    entries: Mutex<Entries>,
}

/// The buckets in use: each entity's theoretical arrival time.
pub(crate) struct Entries {
    tats: HashMap<Entity, Instant>,
    next_sweep: Option<Instant>,
}

impl EntityBuckets {
    pub(crate) fn new(gcra: Gcra) -> Self {
        Self {
            gcra,
            entries: Mutex::new(Entries {
                tats: HashMap::new(),
                next_sweep: None,
            }),
        }
    }

    pub(crate) fn gcra(&self) -> Gcra {
        self.gcra
    }

    /// The buckets, with those idle at `now` dropped when a sweep is due.
    pub(crate) fn lock(&self, now: Instant) -> MutexGuard<'_, Entries> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.next_sweep.is_none_or(|due| now >= due) {
            entries.tats.retain(|_, tat| *tat > now);
            entries.next_sweep = Some(now + SWEEP_EVERY);
        }
        entries
    }
}

impl Entries {
    pub(crate) fn tat(&self, entity: &Entity) -> Option<Instant> {
        self.tats.get(entity).copied()
    }

    pub(crate) fn set(&mut self, entity: &Entity, tat: Instant) {
        match self.tats.get_mut(entity) {
            Some(held) => *held = tat,
            None => {
                self.tats.insert(entity.clone(), tat);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str) -> Entity {
        Entity::Customer(id.to_owned())
    }

    /// Takes the next slot of `entity` at `now`, as the rate limiters do.
    fn take(buckets: &EntityBuckets, entity: &Entity, now: Instant) -> Instant {
        let mut entries = buckets.lock(now);
        let slot = buckets.gcra().slot(entries.tat(entity), now);
        let next = buckets.gcra().after(entries.tat(entity), slot);
        entries.set(entity, next);
        slot
    }

    #[test]
    fn idle_buckets_are_dropped_at_the_next_sweep_and_busy_ones_kept() {
        let buckets = EntityBuckets::new(Gcra::per_minute(30));
        let start = Instant::now();
        take(&buckets, &customer("org_idle"), start);
        for _ in 0..30 {
            take(&buckets, &customer("org_busy"), start);
        }
        assert_eq!(buckets.lock(start).tats.len(), 2);

        // A minute on, org_idle's single call is long released; org_busy still has calls
        // booked ahead (thirty calls asked at once, at 30 a minute, reach past a minute).
        let later = start + SWEEP_EVERY;
        let entries = buckets.lock(later);
        assert_eq!(entries.tat(&customer("org_idle")), None);
        assert!(entries.tat(&customer("org_busy")).is_some());
    }

    #[test]
    fn no_sweep_before_a_minute_has_passed() {
        let buckets = EntityBuckets::new(Gcra::per_minute(30));
        let start = Instant::now();
        take(&buckets, &customer("org_1"), start);
        assert_eq!(
            buckets.lock(start + Duration::from_secs(30)).tats.len(),
            1,
            "swept early"
        );
    }

    #[test]
    fn a_dropped_bucket_is_as_good_as_a_kept_one() {
        // What the sweep relies on: a bucket whose TAT has passed gives the same slots as a
        // fresh one.
        let gcra = Gcra::per_minute(30);
        let start = Instant::now();
        let tat = gcra.after(None, start);
        let later = tat + Duration::from_millis(1);
        assert_eq!(gcra.slot(Some(tat), later), gcra.slot(None, later));
        assert_eq!(gcra.after(Some(tat), later), gcra.after(None, later));
    }

    #[test]
    fn customers_and_subscriptions_of_one_id_have_separate_buckets() {
        let buckets = EntityBuckets::new(Gcra::per_minute(30));
        let now = Instant::now();
        take(&buckets, &customer("x_1"), now);
        let entries = buckets.lock(now);
        assert!(entries.tat(&customer("x_1")).is_some());
        assert_eq!(entries.tat(&Entity::Subscription("x_1".into())), None);
    }
}
