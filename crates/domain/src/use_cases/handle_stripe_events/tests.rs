//! Handling a subject's events against mockall doubles: a port without an expectation panics
//! when called, so each test also proves what was not done.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use mockall::predicate::always;

use super::*;
use crate::model::fixtures::plan;
use crate::model::{LeaseKey, PlanCatalog, StripeEventId, StripeSubscriptionId};
use crate::ports::{
    MockClock, MockLeaseStore, MockOrgRepo, MockProvisioningStore, MockStiggGateway,
    MockStiggLifecycle, MockStripeInbox, MockStripeReader, MockSubscriptionRepo,
    MockSyncStateStore,
};
use crate::use_cases::sync_subscription::{SuspendedPolicy, SyncPorts, SyncSettings};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
        .single()
        .unwrap()
}

fn subject() -> EventSubject {
    EventSubject::Subscription(StripeSubscriptionId::parse("sub_A1").unwrap())
}

fn clock(now: DateTime<Utc>) -> Arc<MockClock> {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(now);
    let start = Instant::now();
    clock.expect_monotonic().return_const(start);
    clock.expect_sleep().returning(|_| ());
    Arc::new(clock)
}

fn leases(taken: bool) -> MockLeaseStore {
    let mut leases = MockLeaseStore::new();
    leases
        .expect_try_take()
        .withf(|key, _, _| {
            *key == LeaseKey::subscription(&StripeSubscriptionId::parse("sub_A1").unwrap())
        })
        .returning(move |key, now, _| {
            Ok(taken.then(|| Lease {
                key: key.clone(),
                holder: "h1".into(),
                expires_at: now + chrono::Duration::seconds(35),
            }))
        });
    leases
}

fn pending(received_at: DateTime<Utc>, attempts: u32) -> PendingEvent {
    PendingEvent {
        id: StripeEventId::parse("evt_1").unwrap(),
        event_type: "customer.subscription.updated".into(),
        received_at,
        attempts,
    }
}

/// The use case, with every sync port a double that has no expectation but the
/// subscriptions repository's answer.
fn handler(
    inbox: MockStripeInbox,
    leases: MockLeaseStore,
    subscriptions: MockSubscriptionRepo,
    now: DateTime<Utc>,
    grace: Duration,
) -> HandleStripeEvents {
    let leases = Arc::new(leases);
    let clock = clock(now);
    let sync = SyncSubscription::new(
        SyncPorts {
            orgs: Arc::new(MockOrgRepo::new()),
            subscriptions: Arc::new(subscriptions),
            provisioning: Arc::new(MockProvisioningStore::new()),
            states: Arc::new(MockSyncStateStore::new()),
            leases: leases.clone(),
            stripe: Arc::new(MockStripeReader::new()),
            stigg: Arc::new(MockStiggGateway::new()),
            lifecycle: Arc::new(MockStiggLifecycle::new()),
            clock: clock.clone(),
        },
        SyncSettings {
            catalog: Arc::new(PlanCatalog::new([plan("starter")]).unwrap()),
            suspended: SuspendedPolicy::Revoke,
            deadline: Duration::from_secs(30),
        },
    );
    HandleStripeEvents::new(
        Arc::new(inbox),
        leases,
        clock,
        sync,
        RetryPolicy {
            unknown_grace: grace,
            ..RetryPolicy::default()
        },
    )
}

/// The inbox answers `events` as pending and keeps what was settled.
fn inbox_with(events: Vec<PendingEvent>, settled: Arc<Mutex<Vec<Settlement>>>) -> MockStripeInbox {
    let mut inbox = MockStripeInbox::new();
    inbox
        .expect_pending()
        .returning(move |_| Ok(events.clone()));
    inbox.expect_settle().returning(move |_, settlement| {
        settled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(settlement.clone());
        Ok(())
    });
    inbox
}

fn releasing(mut leases: MockLeaseStore) -> MockLeaseStore {
    leases.expect_release().times(1).returning(|_| Ok(()));
    leases
}

fn unknown_subscription() -> MockSubscriptionRepo {
    let mut subscriptions = MockSubscriptionRepo::new();
    subscriptions
        .expect_find_by_stripe_id()
        .returning(|_| Ok(None));
    subscriptions
}

#[test]
fn the_delay_doubles_from_one_second_up_to_five_minutes() {
    let policy = RetryPolicy::default();
    let delays: Vec<u64> = [1, 2, 3, 9, 10, 40]
        .into_iter()
        .map(|attempts| policy.delay(attempts).as_secs())
        .collect();
    assert_eq!(delays, [1, 2, 4, 256, 300, 300]);
}

#[tokio::test]
async fn a_subject_another_holder_has_is_left_alone() {
    let handler = handler(
        MockStripeInbox::new(),
        leases(false),
        MockSubscriptionRepo::new(),
        t0(),
        Duration::from_secs(3600),
    );
    assert_eq!(handler.handle(&subject()).await, Ok(Handled::Busy));
}

#[tokio::test]
async fn without_pending_events_nothing_is_synced_and_the_lease_is_given_back() {
    let settled = Arc::new(Mutex::new(Vec::new()));
    let handler = handler(
        inbox_with(Vec::new(), settled.clone()),
        releasing(leases(true)),
        MockSubscriptionRepo::new(),
        t0(),
        Duration::from_secs(3600),
    );
    let Ok(Handled::Ran(report)) = handler.handle(&subject()).await else {
        panic!("should run");
    };
    assert!(report.events.is_empty() && report.moves.is_empty());
    assert!(settled.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_subscription_is_retried_within_the_grace_then_fails() {
    let grace = Duration::from_secs(3600);
    for (waited_secs, attempts, expected) in [
        (10, 0, "retry in 1 s"),
        // The fourth failed attempt waits 8 s.
        (10, 3, "retry in 8 s"),
        (3600, 0, "failed"),
    ] {
        let settled = Arc::new(Mutex::new(Vec::new()));
        let now = t0() + chrono::Duration::seconds(waited_secs);
        let handler = handler(
            inbox_with(vec![pending(t0(), attempts)], settled.clone()),
            releasing(leases(true)),
            unknown_subscription(),
            now,
            grace,
        );
        handler.handle(&subject()).await.unwrap();
        let settled = settled.lock().unwrap().clone();
        let got = match settled.as_slice() {
            [
                Settlement::Retry {
                    error,
                    next_attempt_at,
                },
            ] => {
                assert_eq!(error, "unknown subscription");
                format!("retry in {} s", (*next_attempt_at - now).num_seconds())
            }
            [
                Settlement::Final {
                    status: EventStatus::Failed,
                    error: Some(error),
                    ..
                },
            ] => {
                assert_eq!(error, "unknown subscription");
                "failed".to_owned()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            got, expected,
            "after {waited_secs} s and {attempts} attempts"
        );
    }
}

#[tokio::test]
async fn transient_failures_are_retried_for_72_hours_then_fail() {
    for (waited_hours, expected_retry) in [(1, true), (72, false)] {
        let settled = Arc::new(Mutex::new(Vec::new()));
        let mut subscriptions = MockSubscriptionRepo::new();
        subscriptions
            .expect_find_by_stripe_id()
            .with(always())
            .returning(|_| Err(RepoError::Unavailable("connection refused".into())));
        let handler = handler(
            inbox_with(vec![pending(t0(), 5)], settled.clone()),
            releasing(leases(true)),
            subscriptions,
            t0() + chrono::Duration::hours(waited_hours),
            Duration::from_secs(3600),
        );
        let Ok(Handled::Ran(report)) = handler.handle(&subject()).await else {
            panic!("should run");
        };
        assert_eq!(
            matches!(report.outcome, Outcome::Retrying { .. }),
            expected_retry,
            "{:?}",
            report.outcome
        );
        assert_eq!(settled.lock().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn an_event_past_the_horizon_fails_while_a_newer_one_of_the_subject_is_retried() {
    let settled = Arc::new(Mutex::new(Vec::new()));
    let now = t0() + chrono::Duration::hours(80);
    let mut newer = pending(now - chrono::Duration::minutes(1), 0);
    newer.id = StripeEventId::parse("evt_2").unwrap();
    let mut inbox = MockStripeInbox::new();
    let events = vec![pending(t0(), 3), newer];
    inbox
        .expect_pending()
        .returning(move |_| Ok(events.clone()));
    let sink = settled.clone();
    inbox.expect_settle().returning(move |ids, settlement| {
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        sink.lock().unwrap().push((ids, settlement.clone()));
        Ok(())
    });
    let mut subscriptions = MockSubscriptionRepo::new();
    subscriptions
        .expect_find_by_stripe_id()
        .returning(|_| Err(RepoError::Unavailable("connection refused".into())));
    let handler = handler(
        inbox,
        releasing(leases(true)),
        subscriptions,
        now,
        Duration::from_secs(3600),
    );
    let Ok(Handled::Ran(report)) = handler.handle(&subject()).await else {
        panic!("should run");
    };
    assert!(matches!(report.outcome, Outcome::Retrying { .. }));
    let settled = settled.lock().unwrap().clone();
    assert_eq!(settled.len(), 2, "{settled:?}");
    assert!(
        matches!(&settled[0], (ids, Settlement::Retry { .. }) if ids == &["evt_2"]),
        "{settled:?}"
    );
    assert!(
        matches!(&settled[1], (ids, Settlement::Final { status: EventStatus::Failed, .. }) if ids == &["evt_1"]),
        "{settled:?}"
    );
}
