//! Stigg follows Stripe, black-box: the real server, the Stripe emulator delivering signed
//! webhooks and answering the re-reads, the Stigg emulator receiving the moves.

use std::time::{Duration, Instant};

use onboarding_adapters_db::Backend;
use onboarding_adapters_stripe::{WebhookSecrets, sign};
use serde_json::{Value, json};
use stripe_emulator::{
    NewCustomer, NewSubscription, PriceSpec, SubscriptionChange, SubscriptionStatus, TrialEnd,
};

use crate::helpers::{Options, TestApp, acme_body, on_both_backends, read, spawn_app_with};

/// 2030-01-15, the seeded trial end.
pub(crate) const TRIAL_END: i64 = 1_894_665_600;

pub(crate) async fn app(backend: Backend, extra_args: &[&str]) -> TestApp {
    spawn_app_with(Options {
        backend,
        extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
        ..Options::default()
    })
    .await
}

/// Stripe holds `cus_A1` with `sub_A1` trialing on `plan_starter_m` (by lookup key), as the
/// database's seed; the subscription is provisioned through the API.
pub(crate) async fn provisioned(app: &TestApp) {
    app.seed_acme().await;
    let stripe = app.stripe.emulator();
    stripe
        .create_customer(NewCustomer {
            id: Some("cus_A1".into()),
            ..NewCustomer::default()
        })
        .unwrap();
    let mut subscription = NewSubscription::new(
        "cus_A1",
        PriceSpec {
            id: "price_starter".into(),
            lookup_key: Some("plan_starter_m".into()),
            interval: Default::default(),
        },
    );
    subscription.id = Some("sub_A1".into());
    subscription.status = Some(SubscriptionStatus::Trialing);
    subscription.trial_end = Some(TRIAL_END);
    let created = stripe.create_subscription(subscription).unwrap();
    let (status, body) = app.provision(&acme_body(), "req-provision").await;
    assert_eq!(status, 200, "{body}");
    // Stripe's `created` event reaches the service too (unless the test turned deliveries
    // off); once it is handled, every later event is the test's own.
    if stripe.webhook_url().is_some() {
        settled(app, &last_event_id(&created)).await;
    }
}

pub(crate) async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    read(
        app.client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Waits until the subscription's state satisfies `done`; panics with the last state after
/// 10 s.
pub(crate) async fn wait_for_state(app: &TestApp, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, state) = get(app, "/api/stigg/subscriptions/sub_A1").await;
        if status == 200 && done(&state) {
            return state;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sync did not get there: {status} {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn stigg_subscription(app: &TestApp, id: &str) -> Value {
    app.stigg
        .emulator()
        .subscriptions()
        .into_iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("Stigg has no subscription {id}"))
}

async fn a_cancellation_in_stripe_cancels_in_stigg_once(backend: Backend) {
    let app = app(backend, &[]).await;
    provisioned(&app).await;
    let before = wait_for_state(&app, |s| s["status"] == "active").await;
    assert_eq!(before["stiggSubscriptionId"], "sub_A1");

    let change = app
        .stripe
        .emulator()
        .change_subscription("sub_A1", SubscriptionChange::Cancel)
        .unwrap();
    let event_id = change.events[0]["id"].as_str().unwrap().to_owned();
    let state = wait_for_state(&app, |s| s["status"] == "canceled").await;
    assert_eq!(state["lastEventId"], event_id.as_str());
    assert_eq!(state["lastError"], Value::Null);
    assert_eq!(stigg_subscription(&app, "sub_A1")["status"], "CANCELED");
    assert_eq!(app.stigg_posts("/api/v1/subscriptions/sub_A1/cancel"), 1);

    let (status, event) = get(&app, &format!("/api/stripe/events/{event_id}")).await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["status"], "applied");
    assert_eq!(event["objectId"], "sub_A1");
    assert_eq!(event["moves"][0]["call"], "cancel_subscription");
    assert_eq!(event["moves"][0]["stiggId"], "sub_A1");

    // Within a tenant, only the tenant's subscriptions' events are seen.
    for (tenant, expected) in [("tenant-a", 200), ("tenant-b", 404)] {
        let response = app
            .client
            .get(format!("{}/api/stripe/events/{event_id}", app.address))
            .header("x-tenant-id", tenant)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{tenant}");
    }

    let (_, metrics) = app.get_ok("/metrics").await;
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    };
    assert_eq!(
        value(
            r#"onboarding_stripe_events_total{outcome="applied",type="customer.subscription.deleted"}"#
        ),
        1.0
    );
    assert_eq!(
        value(r#"onboarding_stigg_moves_total{call="cancel_subscription",outcome="ok"}"#),
        1.0
    );
    // The created event and the cancellation, both applied.
    assert_eq!(value("onboarding_stripe_sync_lag_seconds_count"), 2.0);
}

async fn a_trial_extension_and_a_cancellation_at_period_end_are_patched_and_scheduled(
    backend: Backend,
) {
    let app = app(backend, &[]).await;
    provisioned(&app).await;
    let later = TRIAL_END + 7 * 86_400;
    app.stripe
        .emulator()
        .change_subscription(
            "sub_A1",
            SubscriptionChange::TrialEnd {
                trial_end: TrialEnd::At(later),
            },
        )
        .unwrap();
    let state = wait_for_state(&app, |s| {
        s["trialEndsAt"]
            .as_str()
            .is_some_and(|t| t.starts_with("2030-01-22"))
    })
    .await;
    assert_eq!(state["status"], "active");
    app.stripe
        .emulator()
        .change_subscription(
            "sub_A1",
            SubscriptionChange::CancelAt {
                cancel_at: Some(later + 86_400),
            },
        )
        .unwrap();
    let state = wait_for_state(&app, |s| s["cancellationDate"] != Value::Null).await;
    assert!(
        state["cancellationDate"]
            .as_str()
            .is_some_and(|t| t.starts_with("2030-01-23")),
        "{state}"
    );
    app.stripe
        .emulator()
        .change_subscription("sub_A1", SubscriptionChange::CancelAt { cancel_at: None })
        .unwrap();
    let state = wait_for_state(&app, |s| s["cancellationDate"] == Value::Null).await;
    assert_eq!(state["status"], "active");
    let patches = app
        .stigg
        .emulator()
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path == "/api/v1/subscriptions/sub_A1")
        .count();
    // The trial end, then the cancellation taken back.
    assert_eq!(patches, 2);
}

/// A signed delivery, as Stripe sends it.
fn delivery(app: &TestApp, body: &str, secret: &str, at: i64) -> reqwest::RequestBuilder {
    let secrets = WebhookSecrets::parse(secret).unwrap();
    app.client
        .post(format!("{}/api/stripe/webhooks", app.address))
        .header("content-type", "application/json")
        .header("stripe-signature", sign(body.as_bytes(), &secrets, at))
        .body(body.to_owned())
}

fn event(id: &str, object: &str) -> String {
    json!({
        "id": id,
        "object": "event",
        "type": "customer.subscription.updated",
        "created": 1_700_000_000,
        "livemode": false,
        "data": {"object": {"id": object, "object": "subscription"}},
    })
    .to_string()
}

async fn signatures_are_checked_and_duplicates_are_answered_once(backend: Backend) {
    // The bearer guards the API routes, never Stripe's deliveries.
    let app = spawn_app_with(Options {
        backend,
        api_token: Some("api-token-1"),
        ..Options::default()
    })
    .await;
    let now = chrono::Utc::now().timestamp();
    let body = event("evt_sig1", "sub_Unknown1");
    let code =
        |(status, body): (u16, Value)| (status, body["code"].as_str().unwrap_or("").to_owned());

    // Stripe sends no request id: one is made, and the answer names it like the header.
    let response = delivery(&app, &body, "whsec_other", now)
        .send()
        .await
        .unwrap();
    let header = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("a generated x-request-id");
    let (_, answer) = read(response).await;
    assert_eq!(answer["requestId"], header.as_str());

    for (case, request) in [
        ("wrong secret", delivery(&app, &body, "whsec_other", now)),
        ("stale", delivery(&app, &body, "whsec_new7f3a", now - 301)),
        ("future", delivery(&app, &body, "whsec_new7f3a", now + 360)),
    ] {
        let answer = code(read(request.send().await.unwrap()).await);
        assert_eq!(answer, (400, "INVALID_SIGNATURE".into()), "{case}");
    }
    let signed = sign(
        body.as_bytes(),
        &WebhookSecrets::parse("whsec_new7f3a").unwrap(),
        now,
    );
    let tampered = app
        .client
        .post(format!("{}/api/stripe/webhooks", app.address))
        .header("stripe-signature", signed)
        .body(body.replace("sub_Unknown1", "sub_Unknown2"));
    assert_eq!(
        code(read(tampered.send().await.unwrap()).await),
        (400, "INVALID_SIGNATURE".into())
    );
    let unsigned = app
        .client
        .post(format!("{}/api/stripe/webhooks", app.address))
        .body(body.clone());
    assert_eq!(
        code(read(unsigned.send().await.unwrap()).await),
        (400, "INVALID_SIGNATURE".into())
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM stripe_events").await,
        0
    );

    // Either secret of a rotation is accepted; the second delivery is a duplicate.
    for (secret, duplicate) in [("whsec_old7f3a", false), ("whsec_new7f3a", true)] {
        let (status, answer) = read(delivery(&app, &body, secret, now).send().await.unwrap()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer,
            json!({"received": true, "eventId": "evt_sig1", "duplicate": duplicate})
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM stripe_events").await,
        1
    );

    let not_an_event = r#"{"id": 5, "data": {}}"#;
    let (status, answer) = read(
        delivery(&app, not_an_event, "whsec_new7f3a", now)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("BAD_REQUEST"))
    );
    let fields: Vec<&str> = answer["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(fields, ["id", "type", "data.object"]);

    // A type the sync does not act on is stored, and marked ignored.
    let invoice =
        json!({"id": "evt_inv1", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}})
            .to_string();
    let (status, _) = read(
        delivery(&app, &invoice, "whsec_new7f3a", now)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (_, stored) = read(
        app.client
            .get(format!("{}/api/stripe/events/evt_inv1", app.address))
            .bearer_auth("api-token-1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stored["status"], "ignored", "{stored}");

    // Stripe's own bound on a payload: more is refused before it is read whole.
    let huge = format!(
        r#"{{"id": "evt_big", "pad": "{}"}}"#,
        "x".repeat(600 * 1024)
    );
    let (status, answer) = read(
        delivery(&app, &huge, "whsec_new7f3a", now)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE"))
    );

    // One debug-log row per delivery, correlated by the event id when it was readable.
    app.settle_debug_log().await;
    assert_eq!(
        app.debug_log_count_where(
            "path = '/api/stripe/webhooks' AND correlation_id = 'evt_sig1' AND status = 200"
        )
        .await,
        2
    );
    assert_eq!(
        app.debug_log_count_where("path = '/api/stripe/webhooks'")
            .await,
        11
    );
}

async fn a_burst_about_one_subscription_makes_one_move(backend: Backend) {
    let app = app(backend, &[]).await;
    provisioned(&app).await;
    // Stripe's state changes once; a burst of events says so twenty times, concurrently.
    app.stripe
        .emulator()
        .change_subscription(
            "sub_A1",
            SubscriptionChange::CancelAtPeriodEnd {
                cancel_at_period_end: true,
            },
        )
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let sends = (0..20).map(|i| {
        let body = event(&format!("evt_burst{i}"), "sub_A1");
        let request = delivery(&app, &body, "whsec_new7f3a", now);
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    wait_for_state(&app, |s| s["cancellationDate"] != Value::Null).await;
    // Every event of the burst ends applied.
    let started = Instant::now();
    while app
        .count("SELECT COUNT(*) AS n FROM stripe_events WHERE event_id LIKE 'evt_burst%' AND status = 'applied'")
        .await
        < 20
    {
        assert!(started.elapsed() < Duration::from_secs(10), "events left pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.stigg_posts("/api/v1/subscriptions/sub_A1/cancel"), 1);
}

async fn an_event_about_an_unknown_subscription_fails_after_the_grace_period(backend: Backend) {
    let app = app(backend, &["--stripe-sync-unknown-grace-secs=1"]).await;
    let now = chrono::Utc::now().timestamp();
    let body = event("evt_unknown1", "sub_Nobody1");
    let (status, _) = read(
        delivery(&app, &body, "whsec_new7f3a", now)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let started = Instant::now();
    loop {
        let (_, event) = get(&app, "/api/stripe/events/evt_unknown1").await;
        if event["status"] == "failed" {
            assert_eq!(event["error"], "unknown subscription");
            assert!(event["attempts"].as_u64().unwrap() >= 1, "{event}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{event}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = get(&app, "/api/stripe/events/evt_nope").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
    let (status, _) = get(&app, "/api/stigg/subscriptions/sub_Nobody1").await;
    assert_eq!(status, 404);
}

/// Waits until event `id` is settled (not pending); its record.
async fn settled(app: &TestApp, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, event) = get(app, &format!("/api/stripe/events/{id}")).await;
        if status == 200 && event["status"] != "pending" {
            return event;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{status} {event}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn last_event_id(change: &stripe_emulator::Change) -> String {
    change.events.last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_plan_change_starts_a_new_subscription_that_replaces_the_old(backend: Backend) {
    let app = app(backend, &[]).await;
    provisioned(&app).await;
    app.stripe
        .emulator()
        .change_subscription(
            "sub_A1",
            SubscriptionChange::Price {
                price: PriceSpec {
                    id: "price_pro".into(),
                    lookup_key: Some("plan_pro_m".into()),
                    interval: Default::default(),
                },
            },
        )
        .unwrap();
    let state = wait_for_state(&app, |s| s["planCode"] == "plan_pro_m").await;
    let new_id = state["stiggSubscriptionId"].as_str().unwrap().to_owned();
    assert_ne!(new_id, "sub_A1");
    // The new one is active on the new plan; Stigg ended the one it replaced.
    let created = stigg_subscription(&app, &new_id);
    assert_eq!(created["status"], "IN_TRIAL", "{created}");
    assert_eq!(stigg_subscription(&app, "sub_A1")["status"], "CANCELED");
}

async fn a_paused_subscription_is_revoked_and_a_resumed_one_starts_again(backend: Backend) {
    let app = app(backend, &[]).await;
    provisioned(&app).await;
    let stripe = app.stripe.emulator();
    let paused = stripe
        .change_subscription("sub_A1", SubscriptionChange::Pause)
        .unwrap();
    settled(&app, &last_event_id(&paused)).await;
    let state = wait_for_state(&app, |s| s["status"] == "canceled").await;
    assert_eq!(state["stiggSubscriptionId"], "sub_A1");
    let cancel = app
        .stigg
        .emulator()
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/subscriptions/sub_A1/cancel")
        .expect("a cancel");
    let body = cancel.body.unwrap_or_default();
    assert_eq!(body["cancellationAction"], "REVOKE_ENTITLEMENTS", "{body}");

    stripe
        .change_subscription("sub_A1", SubscriptionChange::Resume)
        .unwrap();
    let state = wait_for_state(&app, |s| s["status"] == "active").await;
    let resumed = state["stiggSubscriptionId"].as_str().unwrap().to_owned();
    assert_ne!(
        resumed, "sub_A1",
        "a new Stigg subscription: the old one stays canceled"
    );
    assert_eq!(stigg_subscription(&app, &resumed)["status"], "ACTIVE");
}

async fn with_suspended_keep_a_paused_subscription_is_left_as_it_is(backend: Backend) {
    let app = app(backend, &["--stripe-sync-suspended=keep"]).await;
    provisioned(&app).await;
    let paused = app
        .stripe
        .emulator()
        .change_subscription("sub_A1", SubscriptionChange::Pause)
        .unwrap();
    let event = settled(&app, &last_event_id(&paused)).await;
    assert_eq!(event["status"], "applied");
    assert_eq!(event["moves"], json!([]));
    assert_eq!(stigg_subscription(&app, "sub_A1")["status"], "IN_TRIAL");
}

async fn a_deleted_customer_is_archived_in_stigg(backend: Backend) {
    let app = app(backend, &[]).await;
    provisioned(&app).await;
    let deleted = app.stripe.emulator().delete_customer("cus_A1").unwrap();
    let event = deleted
        .events
        .iter()
        .find(|e| e["type"] == "customer.deleted")
        .expect("a customer.deleted event");
    let event = settled(&app, event["id"].as_str().unwrap()).await;
    assert_eq!(event["status"], "applied", "{event}");
    assert_eq!(event["moves"][0]["call"], "archive_customer");
    assert_eq!(app.stigg.emulator().customer_archived("org_1"), Some(true));
}

async fn an_active_subscription_never_provisioned_is_provisioned_by_the_sync(backend: Backend) {
    let app = app(backend, &[]).await;
    app.seed_acme().await;
    let stripe = app.stripe.emulator();
    stripe
        .create_customer(NewCustomer {
            id: Some("cus_A1".into()),
            ..NewCustomer::default()
        })
        .unwrap();
    let mut subscription = NewSubscription::new(
        "cus_A1",
        PriceSpec {
            id: "price_starter".into(),
            lookup_key: Some("plan_starter_m".into()),
            interval: Default::default(),
        },
    );
    subscription.id = Some("sub_A1".into());
    let created = stripe.create_subscription(subscription).unwrap();
    settled(&app, &last_event_id(&created)).await;
    let state = wait_for_state(&app, |s| s["provisionedAt"] != Value::Null).await;
    assert_eq!(state["status"], "active");
    assert_eq!(state["stiggSubscriptionId"], "sub_A1");
    assert_eq!(stigg_subscription(&app, "sub_A1")["status"], "ACTIVE");
    assert_eq!(app.stigg_posts("/api/v1/customers"), 1);
}

async fn a_price_that_maps_to_no_plan_fails_the_event_at_once(backend: Backend) {
    let app = app(backend, &[]).await;
    provisioned(&app).await;
    let changed = app
        .stripe
        .emulator()
        .change_subscription(
            "sub_A1",
            SubscriptionChange::Price {
                price: PriceSpec {
                    id: "price_unknown".into(),
                    lookup_key: None,
                    interval: Default::default(),
                },
            },
        )
        .unwrap();
    let event = settled(&app, &last_event_id(&changed)).await;
    assert_eq!(event["status"], "failed");
    assert_eq!(event["error"], "price 'price_unknown' maps to no plan code");
    let (_, state) = get(&app, "/api/stigg/subscriptions/sub_A1").await;
    assert_eq!(
        state["lastError"],
        "price 'price_unknown' maps to no plan code"
    );
    assert_eq!(state["planCode"], "plan_starter_m");
}

on_both_backends!(
    a_cancellation_in_stripe_cancels_in_stigg_once,
    a_trial_extension_and_a_cancellation_at_period_end_are_patched_and_scheduled,
    signatures_are_checked_and_duplicates_are_answered_once,
    a_burst_about_one_subscription_makes_one_move,
    an_event_about_an_unknown_subscription_fails_after_the_grace_period,
    a_plan_change_starts_a_new_subscription_that_replaces_the_old,
    a_paused_subscription_is_revoked_and_a_resumed_one_starts_again,
    with_suspended_keep_a_paused_subscription_is_left_as_it_is,
    a_deleted_customer_is_archived_in_stigg,
    an_active_subscription_never_provisioned_is_provisioned_by_the_sync,
    a_price_that_maps_to_no_plan_fails_the_event_at_once,
);
