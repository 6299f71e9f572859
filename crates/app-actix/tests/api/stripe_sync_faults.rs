//! Stigg follows Stripe when things go wrong, black-box: two instances on one database
//! receiving the same events, events late or in reverse order, Stripe or Stigg down for a
//! while, and a Stigg refusal.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use onboarding_adapters_db::Backend;
use onboarding_adapters_stripe::{WebhookSecrets, sign};
use serde_json::{Value, json};
use stigg_emulator::{Fault, FaultAction, LoggedRequest, Scoped as _, SubscriptionStatus};
use stripe_emulator::{
    ApiFault, DeliveryFault, DeliveryFaultAction, SubscriptionChange, TrialEnd, WebhookEndpoint,
};

use crate::helpers::{TestApp, on_both_backends, read};
use crate::stripe_sync::{TRIAL_END, app, get, provisioned, wait_for_state};

/// The secret the Stripe emulator signs with; the service accepts it.
const SECRET: &str = "whsec_new7f3a";
const DAY: i64 = 86_400;
/// A week after the seeded trial end: 2030-01-22.
const LATER: i64 = TRIAL_END + 7 * DAY;
const CANCEL_PATH: &str = "/api/v1/subscriptions/sub_A1/cancel";
const SUBSCRIPTION_PATH: &str = "/api/v1/subscriptions/sub_A1";

fn at(unix: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix, 0).unwrap()
}

/// `body`, signed now as Stripe signs it, for the webhook route at `address`.
fn signed(app: &TestApp, address: &str, body: &str) -> reqwest::RequestBuilder {
    let secrets = WebhookSecrets::parse(SECRET).unwrap();
    app.client
        .post(format!("{address}/api/stripe/webhooks"))
        .header("content-type", "application/json")
        .header(
            "stripe-signature",
            sign(body.as_bytes(), &secrets, Utc::now().timestamp()),
        )
        .body(body.to_owned())
}

/// Delivers `event` to every one of `addresses` at the same moment; their 200 receipts.
async fn deliver_at_once(app: &TestApp, addresses: &[&str], event: &Value) -> Vec<Value> {
    let body = event.to_string();
    let sends = addresses.iter().map(|address| {
        let request = signed(app, address, &body);
        async move { read(request.send().await.unwrap()).await }
    });
    futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|(status, receipt)| {
            assert_eq!(status, 200, "{receipt}");
            receipt
        })
        .collect()
}

/// A bare `customer.subscription.updated` event about `object`.
fn bare_event(id: &str, object: &str) -> Value {
    json!({
        "id": id,
        "object": "event",
        "type": "customer.subscription.updated",
        "created": Utc::now().timestamp(),
        "livemode": false,
        "data": {"object": {"id": object, "object": "subscription"}},
    })
}

fn event_ids(change: &stripe_emulator::Change) -> Vec<String> {
    change
        .events
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The calls that change something in Stigg (every method but GET), in arrival order.
fn stigg_mutations(app: &TestApp) -> Vec<LoggedRequest> {
    app.stigg
        .emulator()
        .requests()
        .into_iter()
        .filter(|request| request.method != "GET")
        .collect()
}

/// Waits (up to 10 s) until the Stripe emulator made every delivery it queued and no stored
/// event is pending.
async fn settled(app: &TestApp) {
    assert!(
        app.stripe
            .emulator()
            .wait_for_deliveries(Duration::from_secs(10))
            .await,
        "the Stripe emulator's deliveries did not end"
    );
    let started = Instant::now();
    loop {
        let pending = app
            .count("SELECT COUNT(*) AS n FROM stripe_events WHERE status = 'pending'")
            .await;
        if pending == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{pending} events still pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The event as `GET /api/stripe/events/{id}` shows it.
async fn event(app: &TestApp, id: &str) -> Value {
    let (status, body) = get(app, &format!("/api/stripe/events/{id}")).await;
    assert_eq!(status, 200, "{id}: {body}");
    body
}

/// Waits (up to `within`) until the event satisfies `done`; panics with its last state.
async fn wait_for_event(
    app: &TestApp,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = get(app, &format!("/api/stripe/events/{id}")).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            started.elapsed() < within,
            "the event did not get there: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn assert_applied(app: &TestApp, ids: &[String]) {
    for id in ids {
        let event = event(app, id).await;
        assert_eq!(event["status"], "applied", "{event}");
        assert_eq!(event["error"], Value::Null, "{event}");
    }
}

/// Provisioned, with the events of the set-up handled: what later tests count from.
async fn ready(backend: Backend) -> TestApp {
    let app = app(backend, &[]).await;
    provisioned(&app).await;
    wait_for_state(&app, |s| s["status"] == "active").await;
    settled(&app).await;
    app
}

/// Whether a subscription's state shows a change was applied.
type Reached = fn(&Value) -> bool;

fn trial_ends(state: &Value, day: &str) -> bool {
    state["trialEndsAt"]
        .as_str()
        .is_some_and(|t| t.starts_with(day))
}

async fn the_same_events_at_two_instances_at_once_move_stigg_once_per_change(backend: Backend) {
    let app = ready(backend).await;
    let peer = app.start_peer().await;
    // Only the test delivers from here on: each event to both instances at the same moment.
    app.stripe.set_webhook(None);
    let before = stigg_mutations(&app).len();
    let steps: [(SubscriptionChange, Reached); 4] = [
        (
            SubscriptionChange::TrialEnd {
                trial_end: TrialEnd::At(LATER),
            },
            |s| trial_ends(s, "2030-01-22"),
        ),
        (
            SubscriptionChange::CancelAt {
                cancel_at: Some(LATER + DAY),
            },
            |s| {
                s["cancellationDate"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("2030-01-23"))
            },
        ),
        (SubscriptionChange::CancelAt { cancel_at: None }, |s| {
            s["cancellationDate"] == Value::Null
        }),
        (SubscriptionChange::Cancel, |s| s["status"] == "canceled"),
    ];
    for (done, (change, reached)) in steps.into_iter().enumerate() {
        let change = app
            .stripe
            .emulator()
            .change_subscription("sub_A1", change)
            .unwrap();
        for event in &change.events {
            let receipts = deliver_at_once(&app, &[&app.address, &peer], event).await;
            let stored = receipts.iter().filter(|r| r["duplicate"] == false).count();
            assert_eq!(stored, 1, "stored once: {receipts:?}");
        }
        wait_for_state(&app, reached).await;
        settled(&app).await;
        assert_applied(&app, &event_ids(&change)).await;
        let moves = stigg_mutations(&app).len() - before;
        assert_eq!(
            moves,
            done + 1,
            "one Stigg call per change, after {change:?}"
        );
    }
    let calls: Vec<(String, String)> = stigg_mutations(&app)[before..]
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let expected = [
        ("PATCH", SUBSCRIPTION_PATH),
        ("POST", CANCEL_PATH),
        ("PATCH", SUBSCRIPTION_PATH),
        ("POST", CANCEL_PATH),
    ]
    .map(|(m, p)| (m.to_owned(), p.to_owned()));
    assert_eq!(calls, expected);
    let mut keys: Vec<_> = stigg_mutations(&app)[before..]
        .iter()
        .map(|r| r.idempotency_key.clone().unwrap())
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), 4, "one key per move: {keys:?}");
    let stigg = app.stigg.emulator().subscription("sub_A1").unwrap();
    assert_eq!(stigg.status, SubscriptionStatus::Canceled);
}

async fn a_burst_spread_across_two_instances_makes_one_move(backend: Backend) {
    let app = ready(backend).await;
    let peer = app.start_peer().await;
    // Stripe's own delivery goes to the peer; the burst to both.
    app.stripe.set_webhook(Some(
        WebhookEndpoint::new(&format!("{peer}/api/stripe/webhooks"), SECRET).unwrap(),
    ));
    let before = stigg_mutations(&app).len();
    let change = app
        .stripe
        .emulator()
        .change_subscription(
            "sub_A1",
            SubscriptionChange::CancelAtPeriodEnd {
                cancel_at_period_end: true,
            },
        )
        .unwrap();
    // Ten events, each delivered to both instances at the same moment: twenty deliveries.
    let sends = (0..20).map(|i| {
        let address = if i % 2 == 0 {
            app.address.as_str()
        } else {
            &peer
        };
        let body = bare_event(&format!("evt_pair{}", i / 2), "sub_A1").to_string();
        let request = signed(&app, address, &body);
        async move { read(request.send().await.unwrap()).await }
    });
    let receipts = futures::future::join_all(sends).await;
    assert!(receipts.iter().all(|(s, _)| *s == 200), "{receipts:?}");
    let stored = receipts
        .iter()
        .filter(|(_, r)| r["duplicate"] == false)
        .count();
    assert_eq!(stored, 10, "{receipts:?}");

    wait_for_state(&app, |s| s["cancellationDate"] != Value::Null).await;
    settled(&app).await;
    let mut ids: Vec<String> = (0..10).map(|i| format!("evt_pair{i}")).collect();
    ids.extend(event_ids(&change));
    assert_applied(&app, &ids).await;
    let moves = &stigg_mutations(&app)[before..];
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(
        (moves[0].method.as_str(), moves[0].path.as_str()),
        ("POST", CANCEL_PATH)
    );
}

async fn events_in_reverse_order_end_at_stripes_last_state(backend: Backend) {
    let app = ready(backend).await;
    app.stripe.set_webhook(None);
    let before = stigg_mutations(&app).len();
    let stripe = app.stripe.emulator();
    // Stripe: a cancellation scheduled, the trial extended, the cancellation taken back.
    let changes: Vec<Vec<Value>> = [
        SubscriptionChange::CancelAtPeriodEnd {
            cancel_at_period_end: true,
        },
        SubscriptionChange::TrialEnd {
            trial_end: TrialEnd::At(LATER),
        },
        SubscriptionChange::CancelAtPeriodEnd {
            cancel_at_period_end: false,
        },
    ]
    .into_iter()
    .map(|change| stripe.change_subscription("sub_A1", change).unwrap().events)
    .collect();

    // Newest first: its re-read finds Stripe's last state, the older ones nothing new.
    for (n, events) in changes.iter().rev().enumerate() {
        for event in events {
            deliver_at_once(&app, &[&app.address], event).await;
        }
        settled(&app).await;
        let ids: Vec<String> = events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        assert_applied(&app, &ids).await;
        let moves = &stigg_mutations(&app)[before..];
        assert_eq!(moves.len(), 1, "after the {n}th newest change: {moves:?}");
        assert_eq!(
            (moves[0].method.as_str(), moves[0].path.as_str()),
            ("PATCH", SUBSCRIPTION_PATH)
        );
    }
    let state = wait_for_state(&app, |s| trial_ends(s, "2030-01-22")).await;
    assert_eq!(state["cancellationDate"], Value::Null, "{state}");
    assert_eq!(state["status"], "active");
    let stigg = app.stigg.emulator().subscription("sub_A1").unwrap();
    assert_eq!(stigg.trial_end, Some(at(LATER)));
    assert_eq!(stigg.cancellation_date, None);
}

async fn an_event_stripe_delivers_late_brings_back_nothing(backend: Backend) {
    let app = ready(backend).await;
    let before = stigg_mutations(&app).len();
    let stripe = app.stripe.emulator();
    // The trial change's event is held back until the next event was delivered.
    stripe.push_delivery_fault(DeliveryFault::new(DeliveryFaultAction::OutOfOrder));
    let held = stripe
        .change_subscription(
            "sub_A1",
            SubscriptionChange::TrialEnd {
                trial_end: TrialEnd::At(LATER),
            },
        )
        .unwrap();
    let next = stripe
        .change_subscription(
            "sub_A1",
            SubscriptionChange::CancelAt {
                cancel_at: Some(LATER + DAY),
            },
        )
        .unwrap();
    wait_for_state(&app, |s| {
        trial_ends(s, "2030-01-22") && s["cancellationDate"] != Value::Null
    })
    .await;
    settled(&app).await;
    let (held_ids, next_ids) = (event_ids(&held), event_ids(&next));
    assert_applied(&app, &[held_ids.clone(), next_ids.clone()].concat()).await;
    let delivered: Vec<String> = stripe
        .deliveries()
        .into_iter()
        .map(|d| d.event_id)
        .collect();
    let position = |id: &String| delivered.iter().position(|d| d == id).unwrap();
    assert!(
        position(&next_ids[0]) < position(&held_ids[0]),
        "delivered in order after all: {delivered:?}"
    );
    // The trial patch and the cancellation, each once; the late event added nothing.
    let moves: Vec<(String, String)> = stigg_mutations(&app)[before..]
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(moves.len(), 2, "{moves:?}");
    assert!(moves.contains(&("PATCH".into(), SUBSCRIPTION_PATH.into())));
    assert!(moves.contains(&("POST".into(), CANCEL_PATH.into())));
    let stigg = app.stigg.emulator().subscription("sub_A1").unwrap();
    assert_eq!(stigg.trial_end, Some(at(LATER)));
    assert_eq!(stigg.cancellation_date, Some(at(LATER + DAY)));
}

async fn a_stripe_outage_leaves_the_event_pending_until_stripe_is_back(backend: Backend) {
    let app = ready(backend).await;
    let before = stigg_mutations(&app).len();
    let stripe = app.stripe.emulator();
    let reads_before = stripe.requests().len();
    stripe.push_api_fault(
        ApiFault::status(503)
            .on_path("/v1/subscriptions/sub_A1")
            .times(1000),
    );
    let change = stripe
        .change_subscription("sub_A1", SubscriptionChange::Cancel)
        .unwrap();
    let ids = event_ids(&change);
    let started = Instant::now();
    // Two rounds fail: pending, attempts counted, the error naming Stripe.
    let pending = wait_for_event(&app, &ids[0], Duration::from_secs(8), |e| {
        e["attempts"].as_u64() >= Some(2)
    })
    .await;
    assert_eq!(pending["status"], "pending", "{pending}");
    let error = pending["error"].as_str().unwrap_or_default();
    assert!(error.contains("Stripe API unavailable"), "{pending}");
    assert!(
        pending["moves"].as_array().is_none_or(Vec::is_empty),
        "{pending}"
    );
    assert_eq!(stigg_mutations(&app).len(), before, "Stigg was called");

    stripe.clear_faults();
    let applied = wait_for_event(&app, &ids[0], Duration::from_secs(8), |e| {
        e["status"] == "applied"
    })
    .await;
    assert_eq!(applied["error"], Value::Null, "{applied}");
    assert_eq!(
        applied["moves"][0]["call"], "cancel_subscription",
        "{applied}"
    );
    assert_applied(&app, &ids).await;
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    let moves = &stigg_mutations(&app)[before..];
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(moves[0].path, CANCEL_PATH);
    assert_eq!(
        app.stigg.emulator().subscription("sub_A1").unwrap().status,
        SubscriptionStatus::Canceled
    );

    // The rounds: three attempts each (the client's own retries), then 1 s, then 2 s apart.
    let reads: Vec<_> = stripe.requests()[reads_before..]
        .iter()
        .filter(|r| r.path == "/v1/subscriptions/sub_A1")
        .cloned()
        .collect();
    let statuses: Vec<u16> = reads.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 503, 503, 503, 503, 200], "{reads:?}");
    let gap = |from: usize, to: usize| (reads[to].at - reads[from].at).num_milliseconds();
    assert!(gap(2, 3) >= 950, "first retry after {} ms", gap(2, 3));
    assert!(gap(5, 6) >= 1950, "second retry after {} ms", gap(5, 6));
}

async fn a_stigg_outage_on_cancel_is_retried_and_cancels_once(backend: Backend) {
    let app = ready(backend).await;
    let before = stigg_mutations(&app).len();
    app.stigg
        .emulator()
        .push_fault(Fault::status(503).on_path(CANCEL_PATH).times(1000));
    let change = app
        .stripe
        .emulator()
        .change_subscription("sub_A1", SubscriptionChange::Cancel)
        .unwrap();
    let ids = event_ids(&change);
    let pending = wait_for_event(&app, &ids[0], Duration::from_secs(8), |e| {
        e["attempts"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(pending["status"], "pending", "{pending}");
    let error = pending["error"].as_str().unwrap_or_default();
    assert!(error.contains("Stigg API unavailable"), "{pending}");
    // The move was recorded as intended before it was sent, and is still open.
    let open_intents = "SELECT COUNT(*) AS n FROM stigg_sync_states \
                        WHERE stripe_subscription_id = 'sub_A1' AND intent IS NOT NULL";
    assert_eq!(app.count(open_intents).await, 1);

    app.stigg.emulator().clear_faults();
    wait_for_event(&app, &ids[0], Duration::from_secs(10), |e| {
        e["status"] == "applied"
    })
    .await;
    assert_applied(&app, &ids).await;
    assert_eq!(app.count(open_intents).await, 0);
    let cancels: Vec<_> = stigg_mutations(&app)[before..].to_vec();
    assert!(cancels.iter().all(|r| r.path == CANCEL_PATH), "{cancels:?}");
    assert!(cancels.len() > 1, "{cancels:?}");
    let keys: std::collections::BTreeSet<_> =
        cancels.iter().map(|r| r.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), 1, "one key for every attempt: {keys:?}");
    assert!(keys.iter().all(Option::is_some));
    let accepted = cancels.iter().filter(|r| r.status == 200).count();
    assert_eq!(accepted, 1, "{cancels:?}");
    assert!(cancels.iter().all(|r| matches!(r.status, 200 | 503)));
    assert_eq!(
        app.stigg.emulator().subscription("sub_A1").unwrap().status,
        SubscriptionStatus::Canceled
    );
    wait_for_state(&app, |s| s["status"] == "canceled").await;
}

async fn a_stigg_refusal_fails_the_event_at_once_with_the_reason(backend: Backend) {
    let app = ready(backend).await;
    let before = stigg_mutations(&app).len();
    app.stigg.emulator().push_fault(
        Fault::new(FaultAction::Status {
            status: 400,
            body: Some(json!({"code": "BadUserInput", "message": "trialEndDate is out of range"})),
            retry_after: None,
            retry_after_ms: None,
        })
        .on_method("PATCH")
        .on_path(SUBSCRIPTION_PATH)
        .times(100),
    );
    let refused = app
        .stripe
        .emulator()
        .change_subscription(
            "sub_A1",
            SubscriptionChange::TrialEnd {
                trial_end: TrialEnd::At(LATER),
            },
        )
        .unwrap();
    let id = &event_ids(&refused)[0];
    let failed = wait_for_event(&app, id, Duration::from_secs(8), |e| {
        e["status"] == "failed"
    })
    .await;
    assert_eq!(failed["attempts"], 1, "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Stigg rejected") && error.contains("trialEndDate is out of range"),
        "{failed}"
    );
    let moves = &stigg_mutations(&app)[before..];
    assert_eq!(moves.len(), 1, "not retried: {moves:?}");
    let (_, state) = get(&app, "/api/stigg/subscriptions/sub_A1").await;
    // Stigg holds what it held: the state read shows it, beside the error.
    assert_eq!(state["status"], "active", "{state}");
    assert!(trial_ends(&state, "2030-01-15"), "{state}");
    assert!(
        state["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("trialEndDate is out of range")),
        "{state}"
    );

    // A failed event does not block its subscription: the next one applies Stripe's state.
    app.stigg.emulator().clear_faults();
    let next = app
        .stripe
        .emulator()
        .change_subscription(
            "sub_A1",
            SubscriptionChange::CancelAt {
                cancel_at: Some(LATER + DAY),
            },
        )
        .unwrap();
    wait_for_state(&app, |s| {
        trial_ends(s, "2030-01-22") && s["cancellationDate"] != Value::Null
    })
    .await;
    settled(&app).await;
    assert_applied(&app, &event_ids(&next)).await;
    assert_eq!(event(&app, id).await["status"], "failed");
}

/// A sync that moves nothing leaves what provisioning created in Stigg: the state read keeps
/// showing it, with the sync's outcome beside it.
async fn a_sync_that_moves_nothing_keeps_showing_what_provisioning_created(backend: Backend) {
    let app = app(backend, &[]).await;
    // Provisioned through the API, before Stripe delivers anything.
    app.stripe.set_webhook(None);
    provisioned(&app).await;
    let (_, before) = get(&app, "/api/stigg/subscriptions/sub_A1").await;
    assert_eq!(before["status"], "active", "{before}");
    assert_eq!(before["lastSyncedAt"], Value::Null, "{before}");

    // An event about the subscription, though nothing changed in Stripe.
    deliver_at_once(&app, &[&app.address], &bare_event("evt_same1", "sub_A1")).await;
    let handled = wait_for_event(&app, "evt_same1", Duration::from_secs(8), |e| {
        e["status"] == "applied"
    })
    .await;
    assert_eq!(handled["moves"], json!([]), "{handled}");
    let (status, after) = get(&app, "/api/stigg/subscriptions/sub_A1").await;
    assert_eq!(status, 200);
    for field in [
        "orgId",
        "stiggCustomerId",
        "stiggSubscriptionId",
        "planCode",
        "status",
        "trialEndsAt",
        "cancellationDate",
        "provisionedAt",
    ] {
        assert_eq!(after[field], before[field], "{field}: {after}");
    }
    assert_eq!(after["lastEventId"], "evt_same1", "{after}");
    assert_eq!(after["lastError"], Value::Null, "{after}");
    assert!(after["lastSyncedAt"].is_string(), "{after}");
}

on_both_backends!(
    a_sync_that_moves_nothing_keeps_showing_what_provisioning_created,
    the_same_events_at_two_instances_at_once_move_stigg_once_per_change,
    a_burst_spread_across_two_instances_makes_one_move,
    events_in_reverse_order_end_at_stripes_last_state,
    an_event_stripe_delivers_late_brings_back_nothing,
    a_stripe_outage_leaves_the_event_pending_until_stripe_is_back,
    a_stigg_outage_on_cancel_is_retried_and_cancels_once,
    a_stigg_refusal_fails_the_event_at_once_with_the_reason,
);
