//! Exactly-once under concurrent callers (one or two instances on one database), convergence
//! after a crash, and a database outage under a running server.

use std::time::{Duration, Instant};

use onboarding_adapters_db::Backend;
use serde_json::{Value, json};
use stigg_emulator::EntityKind;

use crate::helpers::{
    Options, STIGG_KEY, TestApp, acme_body, on_both_backends, provision_request_to, read,
    spawn_app_on, spawn_app_with,
};

on_both_backends!(
    fifty_concurrent_requests_on_one_server_provision_once,
    two_servers_on_one_database_provision_once,
    a_crash_after_stigg_succeeded_converges_on_the_next_request,
    an_expired_lease_of_a_crashed_holder_is_taken_over,
    a_live_lease_of_another_holder_makes_the_request_wait_then_give_up,
);

/// Sends `count` identical provisioning requests at once, spread over `addresses`.
async fn provision_concurrently(
    app: &TestApp,
    addresses: &[String],
    count: usize,
) -> Vec<(u16, Value)> {
    let requests = (0..count).map(|i| {
        let address = &addresses[i % addresses.len()];
        let request = provision_request_to(&app.client, address, &acme_body(), &format!("req-{i}"));
        async move { read(request.send().await.unwrap()).await }
    });
    futures::future::join_all(requests).await
}

fn assert_all_provisioned_once(app: &TestApp, answers: &[(u16, Value)]) {
    for (status, body) in answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["stiggCustomerId"], "org_1");
        assert_eq!(body["stiggSubscriptionId"], "sub_A1");
    }
    assert_eq!(app.stigg_posts("/api/v1/customers"), 1);
    assert_eq!(app.stigg_posts("/api/v1/subscriptions"), 1);
    assert_eq!(app.stigg.emulator().created_count(EntityKind::Customer), 1);
    assert_eq!(
        app.stigg.emulator().created_count(EntityKind::Subscription),
        1
    );
}

async fn fifty_concurrent_requests_on_one_server_provision_once(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;

    let answers = provision_concurrently(&app, std::slice::from_ref(&app.address), 50).await;

    assert_all_provisioned_once(&app, &answers);
    assert_eq!(app.debug_log_count_where("TRUE").await, 50);
}

async fn two_servers_on_one_database_provision_once(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let peer = app.start_peer().await;
    app.seed_acme().await;

    let answers = provision_concurrently(&app, &[app.address.clone(), peer], 50).await;

    assert_all_provisioned_once(&app, &answers);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM stigg_subscription_provisions WHERE provisioned_at IS NOT NULL")
            .await,
        1
    );
}

/// Stigg has both entities (an earlier attempt succeeded there) but the service crashed
/// before recording them: the next request gets 409s, reads both back, finds them equal and
/// records them.
async fn a_crash_after_stigg_succeeded_converges_on_the_next_request(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    let stigg = app.stigg.base_url();
    let create = |path: &'static str, body: Value| {
        app.client
            .post(format!("{stigg}{path}"))
            .header("x-api-key", STIGG_KEY)
            .json(&body)
            .send()
    };
    let customer = create(
        "/api/v1/customers",
        json!({ "id": "org_1", "name": "Acme", "billingId": "cus_A1" }),
    )
    .await
    .unwrap();
    assert_eq!(customer.status(), 201);
    let subscription = create(
        "/api/v1/subscriptions",
        json!({ "id": "sub_A1", "customerId": "org_1", "planId": "plan-starter",
                "billingPeriod": "MONTHLY", "paymentCollectionMethod": "NONE" }),
    )
    .await
    .unwrap();
    assert_eq!(subscription.status(), 201);

    let (status, body) = app.provision(&acme_body(), "req-after-crash").await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stiggSubscriptionId"], "sub_A1");
    let emulator = app.stigg.emulator();
    assert_eq!(emulator.created_count(EntityKind::Customer), 1);
    assert_eq!(emulator.created_count(EntityKind::Subscription), 1);
    let statuses: Vec<_> = emulator
        .requests()
        .iter()
        .skip(2)
        .map(|r| (r.method.clone(), r.path.clone(), r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("POST".into(), "/api/v1/customers".into(), 409),
            ("GET".into(), "/api/v1/customers/org_1".into(), 200),
            ("POST".into(), "/api/v1/subscriptions".into(), 409),
            ("GET".into(), "/api/v1/subscriptions/sub_A1".into(), 200),
        ]
    );
    // Recorded: the next request does not call Stigg.
    let calls = emulator.requests().len();
    let (status, _) = app.provision(&acme_body(), "req-after-crash-2").await;
    assert_eq!(status, 200);
    assert_eq!(emulator.requests().len(), calls);
}

/// A holder that died mid-way left its lease; once the lease has expired the next request
/// takes over and provisions.
async fn an_expired_lease_of_a_crashed_holder_is_taken_over(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    app.exec(
        "INSERT INTO stigg_subscription_provisions
           (stripe_subscription_id, organization_id, attempts, updated_at)
         VALUES ('sub_A1', 'org_1', 1, '2000-01-01 00:00:00');
         INSERT INTO leases (lease_key, holder, expires_at, taken_at)
         VALUES ('subscription:sub_A1', 'crashed-holder', '2000-01-01 00:00:00', '2000-01-01 00:00:00');",
    )
    .await;

    let (status, body) = app.provision(&acme_body(), "req-takeover").await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        app.count("SELECT CAST(attempts AS BIGINT) AS n FROM stigg_subscription_provisions WHERE stripe_subscription_id = 'sub_A1'")
            .await,
        2
    );
}

/// While another live holder has the lease, a request waits for it up to its own deadline,
/// then says so; nothing is sent to Stigg.
async fn a_live_lease_of_another_holder_makes_the_request_wait_then_give_up(backend: Backend) {
    let app = spawn_app_with(Options {
        backend,
        extra_args: vec!["--provisioning-deadline-ms=1500".to_owned()],
        ..Options::default()
    })
    .await;
    app.seed_acme().await;
    app.exec(
        "INSERT INTO stigg_subscription_provisions
           (stripe_subscription_id, organization_id, attempts, updated_at)
         VALUES ('sub_A1', 'org_1', 1, '2000-01-01 00:00:00');
         INSERT INTO leases (lease_key, holder, expires_at, taken_at)
         VALUES ('subscription:sub_A1', 'busy-holder', '2999-01-01 00:00:00', '2000-01-01 00:00:00');",
    )
    .await;

    let started = Instant::now();
    let (status, body) = app.provision(&acme_body(), "req-wait").await;
    let waited = started.elapsed();

    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["message"],
        "subscription 'sub_A1' is being provisioned by another request (its lease ends by \
         2999-01-01T00:00:00Z); retry later"
    );
    assert!(
        waited >= Duration::from_millis(1200),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert!(app.stigg.emulator().requests().is_empty());
}

/// PostgreSQL goes away under a running server (every connection dropped, new ones refused)
/// and comes back: requests fail with INTERNAL and /readyz says 503 meanwhile, the service
/// recovers by itself, and no debug-log row is lost.
#[tokio::test]
async fn a_database_outage_fails_requests_and_readiness_then_recovers() {
    let app = spawn_app_with(Options {
        backend: Backend::Postgres,
        db_proxy: true,
        ..Options::default()
    })
    .await;
    app.seed_acme().await;
    let readyz = || async {
        app.client
            .get(format!("{}/readyz", app.address))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(readyz().await, 200);
    let Some(proxy) = app.db_proxy.as_ref() else {
        panic!("the test asked for a proxy");
    };

    proxy.cut();
    let (status, body) = app.provision(&acme_body(), "req-down").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["code"], "INTERNAL");
    assert_eq!(body["message"], "database unavailable, retry later");
    assert_eq!(readyz().await, 503);

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    while readyz().await != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready again 15 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = app.provision(&acme_body(), "req-up").await;
    assert_eq!(status, 200, "{body}");

    // The row of the request answered during the outage was kept and written afterwards.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = app.debug_rows("req-down").await;
        if let [row] = rows.as_slice() {
            assert_eq!(
                (row.status, row.error_code.as_deref()),
                (500, Some("INTERNAL"))
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outage's debug-log row was lost: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
