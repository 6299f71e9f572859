//! StripeInbox: events stored once, gathered by subject when due, settled once, failed ones
//! listed and requeued.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use diesel::sql_types::{Integer, Nullable, Text, Timestamp};
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_domain::model::{
    EventStatus, EventSubject, MoveRecord, ReceivedEvent, StripeEventId,
};
use onboarding_domain::ports::{EventRecord, InboxCounts, Settlement, StripeInbox};

use crate::support::{TestResult, cus_id, on_both_backends, query, sub_id, utc};

on_both_backends!(
    a_redelivered_event_is_stored_once,
    find_reads_back_what_was_received_and_settled,
    due_subjects_gather_each_subjects_events_oldest_first,
    pending_lists_a_subjects_events_due_or_not,
    a_final_settlement_ends_pending_events_once,
    a_retry_counts_the_attempt_and_keeps_the_events_pending,
    failed_events_page_by_id_and_requeue,
    counts_are_pending_and_failed_only,
    events_settled_on_arrival_are_stored_processed,
    twenty_concurrent_receives_store_one,
);

const UPDATED: &str = "customer.subscription.updated";

fn evt(raw: &str) -> StripeEventId {
    StripeEventId::parse(raw).expect("a valid event id")
}

fn t0() -> DateTime<Utc> {
    utc(2026, 12, 4, 10, 0, 0).expect("a valid time")
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

/// An event as the webhook route stores it, received `seconds` after t0.
fn event(id: &str, event_type: &str, object_id: &str, seconds: i64) -> ReceivedEvent {
    let (status, error) = ReceivedEvent::initial_status(event_type, object_id);
    ReceivedEvent {
        id: evt(id),
        event_type: event_type.into(),
        object_id: object_id.into(),
        created: Some(at(seconds - 1)),
        livemode: true,
        payload: format!(r#"{{"id":"{id}","type":"{event_type}"}}"#),
        status,
        error,
        received_at: at(seconds),
    }
}

async fn receive_all(db: &TestDatabase, events: &[ReceivedEvent]) -> TestResult {
    for event in events {
        assert!(db.receive(event).await?, "{} is new", event.id);
    }
    Ok(())
}

async fn record(db: &TestDatabase, id: &str) -> anyhow::Result<EventRecord> {
    db.find(&evt(id))
        .await?
        .with_context(|| format!("{id} not found"))
}

fn sub(raw: &str) -> EventSubject {
    EventSubject::Subscription(sub_id(raw))
}

fn applied(at: DateTime<Utc>, moves: Vec<MoveRecord>) -> Settlement {
    Settlement::Final {
        status: EventStatus::Applied,
        error: None,
        moves,
        at,
    }
}

fn failed(at: DateTime<Utc>, error: &str) -> Settlement {
    Settlement::Final {
        status: EventStatus::Failed,
        error: Some(error.into()),
        moves: Vec::new(),
        at,
    }
}

async fn a_redelivered_event_is_stored_once(db: TestDatabase) -> TestResult {
    let first = event("evt_1", UPDATED, "sub_A1", 0);
    assert!(db.receive(&first).await?);
    let redelivered = ReceivedEvent {
        payload: "{}".into(),
        received_at: at(60),
        ..first.clone()
    };
    assert!(!db.receive(&redelivered).await?);
    let stored = record(&db, "evt_1").await?;
    assert_eq!(stored.received_at, at(0), "the first delivery is kept");
    Ok(())
}

#[derive(Debug, PartialEq, Eq, diesel::QueryableByName)]
struct Delivery {
    #[diesel(sql_type = Integer)]
    livemode: i32,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = Nullable<Timestamp>)]
    stripe_created_at: Option<chrono::NaiveDateTime>,
    #[diesel(sql_type = Timestamp)]
    next_attempt_at: chrono::NaiveDateTime,
}

async fn find_reads_back_what_was_received_and_settled(db: TestDatabase) -> TestResult {
    assert_eq!(db.find(&evt("evt_unknown")).await?, None);
    let received = event("evt_1", UPDATED, "sub_A1", 0);
    assert!(db.receive(&received).await?);
    assert_eq!(
        record(&db, "evt_1").await?,
        EventRecord {
            id: evt("evt_1"),
            event_type: UPDATED.into(),
            object_id: "sub_A1".into(),
            status: EventStatus::Pending,
            attempts: 0,
            received_at: at(0),
            processed_at: None,
            error: None,
            moves: Vec::new(),
        }
    );
    let delivery = query::<Delivery>(
        &db,
        "SELECT livemode, payload, stripe_created_at, next_attempt_at FROM stripe_events",
    )
    .await?;
    assert_eq!(
        delivery,
        [Delivery {
            livemode: 1,
            payload: received.payload.clone(),
            stripe_created_at: Some(at(-1).naive_utc()),
            next_attempt_at: at(0).naive_utc(),
        }],
        "the rest of the delivery is kept, due at once"
    );

    let moves = vec![
        MoveRecord {
            call: "patch_subscription".into(),
            stigg_id: "sub_A1".into(),
            at: at(5),
        },
        MoveRecord {
            call: "cancel_subscription".into(),
            stigg_id: "sub_A1".into(),
            at: at(6),
        },
    ];
    db.settle(&[evt("evt_1")], &applied(at(7), moves.clone()))
        .await?;
    assert_eq!(
        record(&db, "evt_1").await?,
        EventRecord {
            id: evt("evt_1"),
            event_type: UPDATED.into(),
            object_id: "sub_A1".into(),
            status: EventStatus::Applied,
            attempts: 1,
            received_at: at(0),
            processed_at: Some(at(7)),
            error: None,
            moves,
        }
    );
    Ok(())
}

async fn due_subjects_gather_each_subjects_events_oldest_first(db: TestDatabase) -> TestResult {
    receive_all(
        &db,
        &[
            event("evt_1", UPDATED, "sub_B1", 1),
            event("evt_2", UPDATED, "sub_A1", 2),
            event("evt_3", "customer.subscription.deleted", "sub_B1", 3),
            event("evt_4", "customer.deleted", "cus_C1", 4),
            // Ignored: never due.
            event("evt_5", "invoice.paid", "in_1", 5),
            event("evt_6", UPDATED, "sub_D1", 6),
        ],
    )
    .await?;
    db.settle(&[evt("evt_6")], &applied(at(7), Vec::new()))
        .await?;
    let customer = EventSubject::Customer(cus_id("cus_C1"));

    assert_eq!(
        db.due_subjects(at(10), 10).await?,
        [sub("sub_B1"), sub("sub_A1"), customer.clone()],
        "one entry per subject, the longest waiting first; settled events are not due"
    );
    assert_eq!(
        db.due_subjects(at(10), 2).await?,
        [sub("sub_B1"), sub("sub_A1")]
    );
    assert_eq!(
        db.due_subjects(at(2), 10).await?,
        [sub("sub_B1"), sub("sub_A1")],
        "an event is due from its receipt"
    );
    assert_eq!(db.due_subjects(at(0), 10).await?, []);

    // sub_B1's attempt failed for now: its events wait until second 100.
    db.settle(
        &[evt("evt_1"), evt("evt_3")],
        &Settlement::Retry {
            error: "Stigg unavailable".into(),
            next_attempt_at: at(100),
        },
    )
    .await?;
    assert_eq!(
        db.due_subjects(at(99), 10).await?,
        [sub("sub_A1"), customer.clone()]
    );
    assert_eq!(
        db.due_subjects(at(100), 10).await?,
        [sub("sub_B1"), sub("sub_A1"), customer],
        "due again, it keeps its place by its oldest event"
    );
    Ok(())
}

async fn pending_lists_a_subjects_events_due_or_not(db: TestDatabase) -> TestResult {
    receive_all(
        &db,
        &[
            event("evt_9", UPDATED, "sub_A1", 1),
            event("evt_2", UPDATED, "sub_B1", 2),
            event("evt_1", "customer.subscription.deleted", "sub_A1", 3),
            event("evt_3", UPDATED, "sub_A1", 4),
        ],
    )
    .await?;
    db.settle(
        &[evt("evt_9")],
        &Settlement::Retry {
            error: "timeout".into(),
            next_attempt_at: at(500),
        },
    )
    .await?;
    db.settle(&[evt("evt_3")], &applied(at(5), Vec::new()))
        .await?;

    let pending = db.pending(&sub("sub_A1")).await?;
    let listed: Vec<(&str, &str, u32, DateTime<Utc>)> = pending
        .iter()
        .map(|e| {
            (
                e.id.as_str(),
                e.event_type.as_str(),
                e.attempts,
                e.received_at,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("evt_9", UPDATED, 1, at(1)),
            ("evt_1", "customer.subscription.deleted", 0, at(3)),
        ],
        "oldest first by receipt, not yet due included, settled left out"
    );
    assert_eq!(db.pending(&sub("sub_Z9")).await?, []);
    Ok(())
}

async fn a_final_settlement_ends_pending_events_once(db: TestDatabase) -> TestResult {
    receive_all(
        &db,
        &[
            event("evt_1", UPDATED, "sub_A1", 1),
            event("evt_2", UPDATED, "sub_A1", 2),
            event("evt_3", UPDATED, "sub_A1", 3),
        ],
    )
    .await?;
    let long = "x".repeat(1500);
    db.settle(&[evt("evt_1"), evt("evt_2")], &failed(at(10), &long))
        .await?;
    for id in ["evt_1", "evt_2"] {
        let stored = record(&db, id).await?;
        assert_eq!(stored.status, EventStatus::Failed);
        assert_eq!(stored.attempts, 1);
        assert_eq!(stored.processed_at, Some(at(10)));
        assert_eq!(
            stored.error.as_deref().map(str::len),
            Some(1000),
            "the start of the reason is kept"
        );
    }
    assert_eq!(record(&db, "evt_3").await?.status, EventStatus::Pending);

    // A second holder's settlement comes too late: the events are no longer pending.
    let moves = vec![MoveRecord {
        call: "patch_subscription".into(),
        stigg_id: "sub_A1".into(),
        at: at(11),
    }];
    db.settle(&[evt("evt_1"), evt("evt_3")], &applied(at(12), moves))
        .await?;
    let first = record(&db, "evt_1").await?;
    assert_eq!(
        (first.status, first.attempts, first.processed_at),
        (EventStatus::Failed, 1, Some(at(10)))
    );
    assert_eq!(first.moves, []);
    let third = record(&db, "evt_3").await?;
    assert_eq!((third.status, third.attempts), (EventStatus::Applied, 1));
    assert_eq!(third.moves.len(), 1);

    // Nothing to settle is nothing to do; a final settlement must end the events.
    db.settle(&[], &applied(at(13), Vec::new())).await?;
    let still_pending = Settlement::Final {
        status: EventStatus::Pending,
        error: None,
        moves: Vec::new(),
        at: at(13),
    };
    assert!(db.settle(&[evt("evt_3")], &still_pending).await.is_err());
    Ok(())
}

async fn a_retry_counts_the_attempt_and_keeps_the_events_pending(db: TestDatabase) -> TestResult {
    receive_all(&db, &[event("evt_1", UPDATED, "sub_A1", 1)]).await?;
    for (attempt, due) in [(1, 30), (2, 90)] {
        db.settle(
            &[evt("evt_1")],
            &Settlement::Retry {
                error: format!("attempt {attempt} failed"),
                next_attempt_at: at(due),
            },
        )
        .await?;
        let stored = record(&db, "evt_1").await?;
        assert_eq!(stored.status, EventStatus::Pending);
        assert_eq!(stored.attempts, attempt);
        assert_eq!(stored.processed_at, None);
        assert_eq!(stored.error, Some(format!("attempt {attempt} failed")));
        assert_eq!(db.due_subjects(at(due - 1), 10).await?, []);
        assert_eq!(db.due_subjects(at(due), 10).await?, [sub("sub_A1")]);
    }
    db.settle(&[evt("evt_1")], &applied(at(91), Vec::new()))
        .await?;
    let stored = record(&db, "evt_1").await?;
    assert_eq!(
        (stored.status, stored.attempts, stored.error),
        (EventStatus::Applied, 3, None),
        "the last reason goes once the event is applied"
    );
    Ok(())
}

async fn failed_events_page_by_id_and_requeue(db: TestDatabase) -> TestResult {
    let events: Vec<ReceivedEvent> = (1..=5)
        .map(|n| event(&format!("evt_{n}"), UPDATED, &format!("sub_A{n}"), n))
        .collect();
    receive_all(&db, &events).await?;
    let given_up = [evt("evt_5"), evt("evt_1"), evt("evt_3")];
    db.settle(&given_up, &failed(at(10), "no plan for price"))
        .await?;

    let ids = |page: Vec<EventRecord>| -> Vec<String> {
        page.into_iter().map(|e| e.id.as_str().to_owned()).collect()
    };
    assert_eq!(ids(db.failed(None, 2).await?), ["evt_1", "evt_3"]);
    assert_eq!(ids(db.failed(Some(&evt("evt_3")), 2).await?), ["evt_5"]);
    assert_eq!(
        ids(db.failed(Some(&evt("evt_5")), 2).await?),
        [] as [&str; 0]
    );
    let page = db.failed(None, 1).await?;
    assert_eq!(page[0].error.as_deref(), Some("no plan for price"));

    // evt_2 is pending, not failed: requeuing leaves it alone.
    db.requeue(&[evt("evt_1"), evt("evt_2")], at(20)).await?;
    let requeued = record(&db, "evt_1").await?;
    assert_eq!(
        (requeued.status, requeued.attempts, requeued.processed_at),
        (EventStatus::Pending, 0, None)
    );
    assert_eq!(
        requeued.error.as_deref(),
        Some("no plan for price"),
        "the reason stays until the next settlement"
    );
    assert_eq!(record(&db, "evt_2").await?.attempts, 0);
    assert_eq!(ids(db.failed(None, 10).await?), ["evt_3", "evt_5"]);
    let due = db.due_subjects(at(20), 10).await?;
    assert_eq!(due, [sub("sub_A1"), sub("sub_A2"), sub("sub_A4")]);
    db.requeue(&[], at(21)).await?;
    Ok(())
}

async fn counts_are_pending_and_failed_only(db: TestDatabase) -> TestResult {
    assert_eq!(db.counts().await?, InboxCounts::default());
    receive_all(
        &db,
        &[
            event("evt_1", UPDATED, "sub_A1", 1),
            event("evt_2", UPDATED, "sub_A1", 2),
            event("evt_3", UPDATED, "sub_B1", 3),
            event("evt_4", UPDATED, "sub_C1", 4),
            event("evt_5", "invoice.paid", "in_1", 5),
            // A handled type about an object of the wrong kind: failed on arrival.
            event("evt_6", UPDATED, "cus_A1", 6),
        ],
    )
    .await?;
    db.settle(&[evt("evt_3")], &applied(at(7), Vec::new()))
        .await?;
    db.settle(&[evt("evt_4")], &failed(at(7), "boom")).await?;
    assert_eq!(
        db.counts().await?,
        InboxCounts {
            pending: 2,
            failed: 2
        }
    );
    Ok(())
}

async fn events_settled_on_arrival_are_stored_processed(db: TestDatabase) -> TestResult {
    receive_all(
        &db,
        &[
            event("evt_1", "invoice.paid", "in_1", 1),
            event("evt_2", UPDATED, "cus_A1", 2),
        ],
    )
    .await?;
    let ignored = record(&db, "evt_1").await?;
    assert_eq!(
        (
            ignored.status,
            ignored.attempts,
            ignored.processed_at,
            ignored.error
        ),
        (EventStatus::Ignored, 0, Some(at(1)), None)
    );
    let refused = record(&db, "evt_2").await?;
    assert_eq!(
        (refused.status, refused.processed_at),
        (EventStatus::Failed, Some(at(2)))
    );
    assert!(
        refused
            .error
            .as_deref()
            .is_some_and(|e| e.contains("cus_A1")),
        "{:?}",
        refused.error
    );
    assert_eq!(db.due_subjects(at(100), 10).await?, []);
    assert_eq!(db.failed(None, 10).await?, [refused]);
    Ok(())
}

async fn twenty_concurrent_receives_store_one(db: TestDatabase) -> TestResult {
    let received = event("evt_1", UPDATED, "sub_A1", 0);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let db = db.database().clone();
            let received = received.clone();
            tokio::spawn(async move { db.receive(&received).await })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        if task.await?? {
            stored += 1;
        }
    }
    assert_eq!(stored, 1, "exactly one delivery stores the event");
    assert_eq!(
        db.count("SELECT count(*) AS n FROM stripe_events").await?,
        1
    );
    Ok(())
}
