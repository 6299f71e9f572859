//! `POST /api/stigg/provision` against the real server, SQLite and the Stigg emulator.

use onboarding_adapters_db::Backend;
use serde_json::{Value, json};
use stigg_emulator::{EntityKind, Fault, Scoped};

use crate::helpers::{
    Options, STIGG_KEY, acme_body, acme_with, detail_fields, on_both_backends, read, spawn_app_on,
    spawn_app_with,
};

on_both_backends!(
    happy_path_provisions_customer_and_subscription,
    correlation_id_is_passed_on_to_stigg,
    a_repeated_request_answers_from_the_record_without_calling_stigg,
    missing_fields_are_all_named,
    every_broken_rule_is_named_with_its_reason,
    header_and_body_errors_are_reported_together,
    a_body_that_is_not_a_json_object_is_refused,
    a_body_over_16_kib_is_refused_with_413,
    unknown_organization_is_404,
    tenant_header_scopes_the_organization,
    stripe_customer_of_another_organization_is_404,
    subscription_that_is_unknown_or_of_another_organization_is_404,
    plan_code_other_than_the_subscriptions_is_400,
    a_subscription_whose_status_is_not_provisioned_is_400,
    a_changed_billing_id_never_reuses_the_old_customer,
    a_recorded_customer_missing_in_stigg_is_provisioned_again,
    a_nul_byte_in_one_body_costs_no_other_request_its_row,
    no_secret_is_stored_whatever_the_body_looks_like,
    stigg_failure_is_500_and_a_retry_resumes_with_the_subscription,
    transient_stigg_errors_are_retried_within_one_request,
    a_rejected_stigg_key_is_500_and_the_key_is_never_shown,
    bearer_token_is_required_when_configured,
    other_methods_and_paths_answer_json_errors,
    health_and_readiness,
);

async fn happy_path_provisions_customer_and_subscription(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;

    let response = app
        .provision_request(&acme_body(), "req-1")
        .send()
        .await
        .expect("the service answers");
    assert_eq!(response.headers()["x-request-id"], "req-1");
    assert_eq!(response.headers()["x-correlation-id"], "corr-req-1");
    let (status, body) = read(response).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "provisioned": true,
            "stiggCustomerId": "org_1",
            "stiggSubscriptionId": "sub_A1",
            "requestId": "req-1",
            "correlationId": "corr-req-1"
        })
    );
    let emulator = app.stigg.emulator();
    assert_eq!(emulator.created_count(EntityKind::Customer), 1);
    assert_eq!(emulator.created_count(EntityKind::Subscription), 1);
    let subscription = &emulator.subscriptions()[0];
    assert_eq!(subscription["planId"], "plan-starter");
    assert_eq!(subscription["billingPeriod"], "MONTHLY");
    assert_eq!(subscription["status"], "IN_TRIAL");
    assert_eq!(subscription["paymentCollectionMethod"], "NONE");
    assert!(
        subscription["trialEndDate"]
            .as_str()
            .is_some_and(|d| d.starts_with("2030-01-15T00:00:00")),
        "{subscription}"
    );
    let customer = &emulator.customers()[0];
    assert_eq!(customer["billingId"], "cus_A1");
    assert_eq!(customer["name"], "Acme");

    let rows = app.debug_rows("req-1").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, 200);
    assert_eq!(rows[0].request_id.as_deref(), Some("req-1"));
    assert_eq!(rows[0].correlation_id.as_deref(), Some("corr-req-1"));
    assert_eq!(rows[0].method, "POST");
    assert_eq!(rows[0].path, "/api/stigg/provision");
    assert!(
        rows[0]
            .request_body
            .as_deref()
            .is_some_and(|b| b.contains("sub_A1"))
    );
    assert_eq!(rows[0].error_code, None);
}

async fn correlation_id_is_passed_on_to_stigg(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    let (status, _) = app.provision(&acme_body(), "req-c").await;
    assert_eq!(status, 200);
    let requests = app.stigg.emulator().requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(
            request.correlation_id.as_deref(),
            Some("corr-req-c"),
            "{request:?}"
        );
        assert!(request.api_key_valid);
    }
    let keys: Vec<_> = requests
        .iter()
        .filter_map(|r| r.idempotency_key.as_deref())
        .collect();
    assert_eq!(keys, ["customer:org_1", "subscription:sub_A1"]);
}

async fn a_repeated_request_answers_from_the_record_without_calling_stigg(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    let (first, first_body) = app.provision(&acme_body(), "req-a").await;
    let calls = app.stigg.emulator().requests().len();
    let (second, second_body) = app.provision(&acme_body(), "req-b").await;

    assert_eq!((first, second), (200, 200));
    assert_eq!(
        first_body["stiggSubscriptionId"],
        second_body["stiggSubscriptionId"]
    );
    assert_eq!(second_body["requestId"], "req-b");
    assert_eq!(
        app.stigg.emulator().requests().len(),
        calls,
        "Stigg was called again"
    );
}

async fn missing_fields_are_all_named(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let (status, body) = app.provision(&json!({}), "req-m").await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "BAD_REQUEST");
    assert_eq!(
        detail_fields(&body),
        [
            "orgId",
            "stripeCustomerId",
            "stripeSubscriptionId",
            "planCode"
        ]
    );
    assert_eq!(body["details"][0]["message"], "is required");
    assert_eq!(body["requestId"], "req-m");
    assert_eq!(body["correlationId"], "corr-req-m");
    assert!(app.stigg.emulator().requests().is_empty());
    let rows = app.debug_rows("req-m").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status, rows[0].error_code.as_deref()),
        (400, Some("BAD_REQUEST"))
    );
}

async fn every_broken_rule_is_named_with_its_reason(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let body = json!({
        "orgId": "_bad",
        "stripeCustomerId": 42,
        "stripeSubscriptionId": "cus_wrong",
        "planCode": "plan_x",
        "unknownField": "ignored"
    });
    let (status, body) = app.provision(&body, "req-v").await;
    assert_eq!(status, 400);
    assert_eq!(
        detail_fields(&body),
        [
            "orgId",
            "stripeCustomerId",
            "stripeSubscriptionId",
            "planCode"
        ]
    );
    assert_eq!(
        body["details"][1]["message"],
        "must be a string, not a number"
    );
    assert_eq!(body["details"][3]["message"], "unknown plan code 'plan_x'");
}

async fn header_and_body_errors_are_reported_together(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let response = app
        .client
        .post(format!("{}/api/stigg/provision", app.address))
        .header("x-correlation-id", "has space")
        .header("x-tenant-id", "t".repeat(129))
        .json(&json!({ "orgId": "org_1" }))
        .send()
        .await
        .expect("the service answers");
    assert!(response.headers().get("x-request-id").is_none());
    assert!(response.headers().get("x-correlation-id").is_none());
    let (status, body) = read(response).await;
    assert_eq!(status, 400);
    assert_eq!(
        detail_fields(&body),
        [
            "x-request-id",
            "x-correlation-id",
            "x-tenant-id",
            "stripeCustomerId",
            "stripeSubscriptionId",
            "planCode"
        ]
    );
    assert_eq!(body["requestId"], Value::Null);
}

async fn a_body_that_is_not_a_json_object_is_refused(backend: Backend) {
    let app = spawn_app_on(backend).await;
    for (raw, expected) in [
        ("{not json", "is not valid JSON"),
        ("[1,2]", "must be a JSON object"),
        ("", "is required"),
    ] {
        let response = app
            .client
            .post(format!("{}/api/stigg/provision", app.address))
            .header("x-request-id", "r")
            .header("x-correlation-id", "c")
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("the service answers");
        let (status, body) = read(response).await;
        assert_eq!(status, 400, "{raw}");
        assert_eq!(detail_fields(&body), ["body"]);
        let message = body["details"][0]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(expected), "{raw}: {message}");
    }
}

async fn a_body_over_16_kib_is_refused_with_413(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let padding = "x".repeat(17 * 1024);
    let body = json!({ "orgId": "org_1", "padding": padding });
    let (status, body) = app.provision(&body, "req-big").await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(body["requestId"], "req-big");
    let rows = app.debug_rows("req-big").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, 413);
}

async fn unknown_organization_is_404(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    let body = acme_with("orgId", "org_2");
    let (status, body) = app.provision(&body, "req-o").await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "NOT_FOUND");
    assert_eq!(body["message"], "organization 'org_2' not found");
    assert!(app.stigg.emulator().requests().is_empty());
}

async fn tenant_header_scopes_the_organization(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    let send = |tenant: &'static str, id: &'static str| {
        app.provision_request(&acme_body(), id)
            .header("x-tenant-id", tenant)
            .send()
    };
    let (status, _) = read(
        send("tenant-b", "req-t1")
            .await
            .expect("the service answers"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = read(
        send("tenant-a", "req-t2")
            .await
            .expect("the service answers"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.debug_rows("req-t2").await[0].tenant_id.as_deref(),
        Some("tenant-a")
    );
}

async fn stripe_customer_of_another_organization_is_404(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    app.exec("INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('org_2', 'Other', NULL, 'cus_B2');")
        .await;
    let body = acme_with("stripeCustomerId", "cus_B2");
    let (status, body) = app.provision(&body, "req-s").await;
    assert_eq!(status, 404);
    assert_eq!(
        body["message"],
        "Stripe customer 'cus_B2' not found for organization 'org_1'"
    );
}

async fn subscription_that_is_unknown_or_of_another_organization_is_404(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    app.exec(
        "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('org_2', 'Other', NULL, 'cus_B2');
         INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
         VALUES ('s_2', 'org_2', 'sub_B2', 'plan_starter_m', 'trialing', NULL);",
    )
    .await;
    for sub in ["sub_Nope", "sub_B2"] {
        let body = acme_with("stripeSubscriptionId", sub);
        let (status, body) = app.provision(&body, "req-u").await;
        assert_eq!(status, 404, "{sub}");
        assert_eq!(
            body["message"],
            format!("subscription '{sub}' not found for organization 'org_1'")
        );
    }
    assert!(app.stigg.emulator().requests().is_empty());
}

async fn plan_code_other_than_the_subscriptions_is_400(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    let body = acme_with("planCode", "plan_pro_m");
    let (status, body) = app.provision(&body, "req-p").await;
    assert_eq!(status, 400);
    assert_eq!(detail_fields(&body), ["planCode"]);
}

async fn a_subscription_whose_status_is_not_provisioned_is_400(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    for (i, status) in ["canceled", "unpaid", "paused", "incomplete"]
        .iter()
        .enumerate()
    {
        app.exec(&format!(
            "UPDATE subscriptions SET status = '{status}' WHERE stripe_subscription_id = 'sub_A1'"
        ))
        .await;
        let (code, body) = app.provision(&acme_body(), &format!("req-st{i}")).await;
        assert_eq!(code, 400, "{status}: {body}");
        assert_eq!(detail_fields(&body), ["stripeSubscriptionId"], "{body}");
        let message = body["details"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(status) && message.contains("sub_A1"),
            "{message}"
        );
    }
    assert!(app.stigg.emulator().requests().is_empty());
    // Past due is still provisioned: Stripe keeps access while it retries the payment.
    app.exec(
        "UPDATE subscriptions SET status = 'past_due' WHERE stripe_subscription_id = 'sub_A1'",
    )
    .await;
    let (code, body) = app.provision(&acme_body(), "req-st-ok").await;
    assert_eq!(code, 200, "{body}");
}

async fn a_changed_billing_id_never_reuses_the_old_customer(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    let (status, _) = app.provision(&acme_body(), "req-b1").await;
    assert_eq!(status, 200);
    // The organization moves to another Stripe customer and gets a new subscription.
    app.exec(
        "UPDATE organizations SET stripe_customer_id = 'cus_B9' WHERE id = 'org_1';
         INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
         VALUES ('s_2', 'org_1', 'sub_A2', 'plan_starter_m', 'trialing', NULL);",
    )
    .await;
    let mut body = acme_with("stripeCustomerId", "cus_B9");
    body["stripeSubscriptionId"] = json!("sub_A2");

    let (status, answer) = app.provision(&body, "req-b2").await;

    // Stigg replays the first customer answer (billed as cus_A1): that is a conflict, and the
    // new subscription is not attached to a customer billed as the old one.
    assert_eq!(status, 500, "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("different data") && message.contains("cus_B9"),
        "{message}"
    );
    assert_eq!(app.stigg_posts("/api/v1/customers"), 2);
    assert_eq!(app.stigg_posts("/api/v1/subscriptions"), 1);
}

async fn a_recorded_customer_missing_in_stigg_is_provisioned_again(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    app.stigg.emulator().push_fault(
        Fault::status(500)
            .on_method("POST")
            .on_path("/api/v1/subscriptions")
            .times(3),
    );
    let (status, _) = app.provision(&acme_body(), "req-m1").await;
    assert_eq!(status, 500);
    // The customer is recorded as created, then disappears from Stigg.
    app.stigg.emulator().reset();

    let (status, body) = app.provision(&acme_body(), "req-m2").await;

    assert_eq!(status, 200, "{body}");
    let emulator = app.stigg.emulator();
    assert_eq!(emulator.customers().len(), 1);
    assert_eq!(emulator.subscriptions().len(), 1);
    assert_eq!(emulator.subscriptions()[0]["customerId"], "org_1");
}

/// PostgreSQL refuses NUL in text. Sent among other requests (so that their rows share its
/// batch), such a body must cost no request its row, its own included.
async fn a_nul_byte_in_one_body_costs_no_other_request_its_row(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let send = |i: usize| {
        let body: &[u8] = if i == 10 {
            b"{\"orgId\":\"abc\x00def\"}"
        } else {
            b"{\"orgId\":\"abc\"}"
        };
        app.client
            .post(format!("{}/api/stigg/provision", app.address))
            .header("content-type", "application/json")
            .header("x-request-id", format!("req-nul-{i}"))
            .header("x-correlation-id", "corr-nul")
            .body(body.to_vec())
            .send()
    };
    let answers = futures::future::join_all((0..30).map(send)).await;
    for answer in answers {
        let answer = answer.expect("the service answers");
        assert_eq!(answer.status(), 400);
    }
    app.settle_debug_log().await;
    for i in 0..30 {
        let rows = app.debug_rows(&format!("req-nul-{i}")).await;
        assert_eq!(rows.len(), 1, "req-nul-{i}: {rows:?}");
    }
    let hostile = app.debug_rows("req-nul-10").await;
    assert_eq!(
        hostile[0].request_body.as_deref(),
        Some("{\"orgId\":\"abc\u{FFFD}def\"}")
    );
}

async fn no_secret_is_stored_whatever_the_body_looks_like(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let bodies: [(&str, &[u8]); 7] = [
        (
            "application/x-www-form-urlencoded",
            b"password=hunter2&apiKey=sk_live_x",
        ),
        ("text/plain", b"password=hunter2&apiKey=sk_live_x"),
        (
            "application/json",
            b"\xEF\xBB\xBF{\"password\":\"hunter2\"}",
        ),
        (
            "application/json",
            b"{\"PASSWD\":\"hunter2\"} trailing junk",
        ),
        (
            "application/json",
            b"{\"orgId\":\"sk_live_51HabcDEF\",\"pwd\":\"hunter2",
        ),
        (
            "text/plain",
            b"note: sk_live_51HabcDEF and card 4242 4242 4242 4242",
        ),
        (
            "application/json",
            b"{\"orgId\":\"org_1\",\"cookie\":\"hunter2\",\"n\":4242424242424242}",
        ),
    ];
    for (i, (content_type, body)) in bodies.iter().enumerate() {
        let answer = app
            .client
            .post(format!("{}/api/stigg/provision", app.address))
            .header("content-type", *content_type)
            .header("x-request-id", format!("req-secret-{i}"))
            .header("x-correlation-id", "corr-secret")
            .body(body.to_vec())
            .send()
            .await
            .expect("the service answers");
        assert!(
            answer.status().is_client_error(),
            "{i}: {}",
            answer.status()
        );
    }
    let mut stored = String::new();
    for i in 0..bodies.len() {
        let rows = app.debug_rows(&format!("req-secret-{i}")).await;
        assert_eq!(rows.len(), 1, "{i}");
        let body = rows[0].request_body.clone().unwrap_or_default();
        assert!(body.contains("[REDACTED]"), "{i}: {body}");
        stored.push_str(&body);
    }
    for secret in ["hunter2", "sk_live", "4242"] {
        assert!(!stored.contains(secret), "{secret} stored: {stored}");
    }
}

async fn stigg_failure_is_500_and_a_retry_resumes_with_the_subscription(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    app.stigg.emulator().push_fault(
        Fault::status(500)
            .on_method("POST")
            .on_path("/api/v1/subscriptions")
            .times(3),
    );

    let (status, body) = app.provision(&acme_body(), "req-f1").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["code"], "INTERNAL");
    assert_eq!(
        body["message"],
        "Stigg API unavailable after 3 attempts (HTTP 500)"
    );
    assert_eq!(body["correlationId"], "corr-req-f1");
    assert_eq!(
        app.debug_rows("req-f1").await[0].error_code.as_deref(),
        Some("INTERNAL")
    );
    assert_eq!(app.stigg_posts("/api/v1/customers"), 1);
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM stigg_customer_provisions WHERE organization_id = 'org_1'"
        )
        .await,
        1
    );

    let (status, _) = app.provision(&acme_body(), "req-f2").await;
    assert_eq!(status, 200);
    // The customer step was recorded, so only the subscription was sent again.
    assert_eq!(app.stigg_posts("/api/v1/customers"), 1);
    assert_eq!(app.stigg_posts("/api/v1/subscriptions"), 4);
}

async fn transient_stigg_errors_are_retried_within_one_request(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.seed_acme().await;
    app.stigg
        .emulator()
        .push_fault(Fault::status(503).on_path("/api/v1/customers").times(2));
    let (status, body) = app.provision(&acme_body(), "req-r").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.stigg_posts("/api/v1/customers"), 3);
    assert_eq!(app.stigg.emulator().created_count(EntityKind::Customer), 1);
}

async fn a_rejected_stigg_key_is_500_and_the_key_is_never_shown(backend: Backend) {
    let app = spawn_app_with(Options {
        backend,
        service_stigg_key: "server-wrong-key-1234",
        ..Options::default()
    })
    .await;
    app.seed_acme().await;
    let (status, body) = app.provision(&acme_body(), "req-k").await;
    assert_eq!(status, 500);
    assert_eq!(body["message"], "Stigg rejected the API key");
    let everything = format!("{body}{:?}", app.debug_rows("req-k").await);
    assert!(!everything.contains("server-wrong-key-1234"));
    assert!(!everything.contains(STIGG_KEY));
}

async fn bearer_token_is_required_when_configured(backend: Backend) {
    let app = spawn_app_with(Options {
        backend,
        api_token: Some("t0ken-secret"),
        ..Options::default()
    })
    .await;
    app.seed_acme().await;
    let (status, body) = app.provision(&acme_body(), "req-n").await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "UNAUTHORIZED");
    assert_eq!(body["requestId"], "req-n");
    let wrong = app
        .provision_request(&acme_body(), "req-w")
        .bearer_auth("t0ken-secreT")
        .send()
        .await
        .expect("the service answers");
    assert_eq!(wrong.status(), 401);
    let right = app
        .provision_request(&acme_body(), "req-y")
        .bearer_auth("t0ken-secret")
        .send()
        .await
        .expect("the service answers");
    assert_eq!(right.status(), 200);
    assert_eq!(
        app.debug_rows("req-n").await[0].error_code.as_deref(),
        Some("UNAUTHORIZED")
    );
    // The scheme name is case-insensitive.
    for scheme in ["bearer", "BEARER"] {
        let answer = app
            .provision_request(&acme_body(), &format!("req-{scheme}"))
            .header("authorization", format!("{scheme} t0ken-secret"))
            .send()
            .await
            .expect("the service answers");
        assert_eq!(answer.status(), 200, "{scheme}");
    }
    // Two credentials are refused like repeated trace headers, even if one is right.
    let (status, body) = read(
        app.provision_request(&acme_body(), "req-twice")
            .header("authorization", "Bearer t0ken-secret")
            .header("authorization", "Bearer other")
            .send()
            .await
            .expect("the service answers"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(detail_fields(&body), ["authorization"]);
}

async fn other_methods_and_paths_answer_json_errors(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let response = app
        .client
        .get(format!("{}/api/stigg/provision", app.address))
        .header("x-request-id", "req-g")
        .header("x-correlation-id", "c")
        .send()
        .await
        .expect("the service answers");
    assert_eq!(response.headers()["allow"], "POST");
    let (status, body) = read(response).await;
    assert_eq!(status, 405);
    assert_eq!(body["requestId"], "req-g");
    assert_eq!(app.debug_rows("req-g").await.len(), 1);

    let response = app
        .client
        .get(format!("{}/nowhere", app.address))
        .send()
        .await
        .expect("the service answers");
    let (status, body) = read(response).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
}

async fn health_and_readiness(backend: Backend) {
    let app = spawn_app_on(backend).await;
    for path in ["healthz", "readyz"] {
        let response = app
            .client
            .get(format!("{}/{path}", app.address))
            .send()
            .await
            .expect("the service answers");
        assert_eq!(response.status(), 200, "{path}");
    }

    // A migration the database no longer records (rolled back by hand under a running
    // server): the service answers, but is not ready.
    app.exec(
        "DELETE FROM __diesel_schema_migrations
         WHERE version = (SELECT max(version) FROM __diesel_schema_migrations)",
    )
    .await;
    let response = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("the service answers");
    let (status, body) = read(response).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["reason"], "1 database migration(s) not applied");
}
