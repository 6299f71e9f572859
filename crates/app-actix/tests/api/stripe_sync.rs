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
    stripe.create_subscription(subscription).unwrap();
    let (status, body) = app.provision(&acme_body(), "req-provision").await;
    assert_eq!(status, 200, "{body}");
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

    for (case, request) in [
        ("wrong secret", delivery(&app, &body, "whsec_other", now)),
        ("stale", delivery(&app, &body, "whsec_new7f3a", now - 301)),
        ("future", delivery(&app, &body, "whsec_new7f3a", now + 301)),
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
        8
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

on_both_backends!(
    a_cancellation_in_stripe_cancels_in_stigg_once,
    a_trial_extension_and_a_cancellation_at_period_end_are_patched_and_scheduled,
    signatures_are_checked_and_duplicates_are_answered_once,
    a_burst_about_one_subscription_makes_one_move,
    an_event_about_an_unknown_subscription_fails_after_the_grace_period,
);
