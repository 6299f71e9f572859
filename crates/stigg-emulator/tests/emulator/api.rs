//! The provisioning routes over HTTP, as the Stigg adapter sees them, and the emulator's own
//! machinery: faults, rate limits, the request log, the admin routes.

use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use stigg_emulator::{
    Emulator, EmulatorConfig, EntityKind, Fault, FaultAction, RateLimit, RetryAfterHint, Scoped,
};

use crate::support::*;

#[tokio::test]
async fn missing_or_wrong_api_key_is_401_and_logged_as_invalid() -> TestResult {
    let h = start().await?;
    let unauthenticated =
        json!({"code": "Unauthenticated", "message": "Invalid or missing API key"});

    let missing = h
        .client
        .post(h.url("/api/v1/customers"))
        .json(&customer("org_1"))
        .send()
        .await?;
    assert_eq!(
        status_and_body(missing).await?,
        (401, unauthenticated.clone())
    );

    let wrong = h
        .client
        .get(h.url("/api/v1/customers/org_1"))
        .header("x-api-key", "not-the-key")
        .send()
        .await?;
    assert_eq!(status_and_body(wrong).await?, (401, unauthenticated));

    assert_eq!(h.emulator().created_count(EntityKind::Customer), 0);
    let log = h.emulator().requests();
    assert_eq!(log.len(), 2);
    assert!(
        log.iter()
            .all(|request| !request.api_key_valid && request.status == 401)
    );
    Ok(())
}

#[tokio::test]
async fn customer_is_created_and_read_back() -> TestResult {
    let h = start().await?;
    let created = h.create_customer("org_42").await?;
    let data = &created["data"];
    assert_eq!(data["id"], "org_42");
    assert_eq!(data["name"], "Example Org");
    assert_eq!(data["email"], "owner@example.org");
    assert_eq!(data["billingId"], "cus_A1");
    assert_eq!(
        data["metadata"],
        json!({"orgId": "org_42", "stripeCustomerId": "cus_A1"})
    );
    assert_eq!(data["archivedAt"], Value::Null);
    assert!(data["createdAt"].is_string() && data["updatedAt"].is_string());
    assert!(data.get("ignoredField").is_none());

    let read = h.get("/api/v1/customers/org_42").await?;
    assert_eq!(status_and_body(read).await?, (200, created.clone()));
    assert_eq!(h.emulator().customers(), vec![created["data"].clone()]);

    let missing = h.get("/api/v1/customers/org_missing").await?;
    let (status, body) = status_and_body(missing).await?;
    assert_eq!((status, &body["code"]), (404, &json!("CustomerNotFound")));
    Ok(())
}

#[tokio::test]
async fn duplicate_customer_id_is_409_and_creates_nothing() -> TestResult {
    let h = start().await?;
    h.create_customer("org_1").await?;
    let again = h
        .post(
            "/api/v1/customers",
            &json!({"id": "org_1", "name": "Other"}),
        )
        .await?;
    assert_eq!(
        status_and_body(again).await?,
        (
            409,
            json!({"code": "DuplicatedEntityNotAllowed", "message": "Duplicated entity not allowed"})
        )
    );
    assert_eq!(h.emulator().created_count(EntityKind::Customer), 1);
    assert_eq!(h.emulator().customers()[0]["name"], "Example Org");
    Ok(())
}

#[tokio::test]
async fn idempotent_repeat_replays_the_first_answer_even_with_another_body() -> TestResult {
    let h = start().await?;
    let first = h
        .post_idempotent("/api/v1/customers", "customer:org_1", &customer("org_1"))
        .await?;
    assert!(header(&first, "idempotent-replayed").is_none());
    let first = status_and_body(first).await?;
    assert_eq!(first.0, 201);

    let repeat = h
        .post_idempotent("/api/v1/customers", "customer:org_1", &customer("org_1"))
        .await?;
    assert_eq!(header(&repeat, "idempotent-replayed"), Some("true"));
    assert_eq!(status_and_body(repeat).await?, first);

    let other_body = h
        .post_idempotent("/api/v1/customers", "customer:org_1", &customer("org_2"))
        .await?;
    assert_eq!(status_and_body(other_body).await?, first);

    assert_eq!(h.emulator().created_count(EntityKind::Customer), 1);
    let statuses: Vec<u16> = h
        .emulator()
        .requests()
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(statuses, vec![201, 201, 201]);
    Ok(())
}

#[tokio::test]
async fn stored_error_answers_are_replayed_but_server_errors_are_not() -> TestResult {
    let h = start().await?;
    let orphan = json!({"customerId": "org_later", "planId": "plan-free"});
    let first = h
        .post_idempotent("/api/v1/subscriptions", "subscription:a", &orphan)
        .await?;
    assert_eq!(first.status(), StatusCode::NOT_FOUND);
    h.create_customer("org_later").await?;
    // The customer exists now, but the key's stored 404 is what Stigg hands back.
    let replay = h
        .post_idempotent("/api/v1/subscriptions", "subscription:a", &orphan)
        .await?;
    let (status, body) = status_and_body(replay).await?;
    assert_eq!((status, &body["code"]), (404, &json!("CustomerNotFound")));

    // A 5xx (here injected) says "try again", so the retry with the same key really runs.
    h.emulator().push_fault(Fault::status(500));
    let failed = h
        .post_idempotent("/api/v1/subscriptions", "subscription:b", &orphan)
        .await?;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let retried = h
        .post_idempotent("/api/v1/subscriptions", "subscription:b", &orphan)
        .await?;
    assert_eq!(retried.status(), StatusCode::CREATED);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_key_create_once() -> TestResult {
    let h = start().await?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = h
            .api(Method::POST, "/api/v1/customers")
            .header("Idempotency-Key", "customer:org_race")
            .json(&customer("org_race"));
        tasks.spawn(async move {
            let response = request.send().await?;
            status_and_body(response).await
        });
    }
    let answers: Vec<(u16, Value)> = tasks
        .join_all()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    assert_eq!(answers.len(), 20);
    assert!(answers.iter().all(|answer| answer == &answers[0]));
    assert_eq!(answers[0].0, 201);
    assert_eq!(h.emulator().created_count(EntityKind::Customer), 1);
    assert_eq!(h.emulator().requests().len(), 20);
    Ok(())
}

/// Embedded in a server with several workers, as another app could, racing creates still
/// produce one entity: one 201, the rest 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_in_a_multi_worker_server_racing_creates_make_one_entity() -> TestResult {
    let emulator = Emulator::default();
    let served = emulator.clone();
    let listener = std::net::TcpListener::bind(loopback())?;
    let addr = listener.local_addr()?;
    let server = actix_web::HttpServer::new(move || {
        let emulator = served.clone();
        actix_web::App::new().configure(move |cfg| emulator.configure(cfg))
    })
    .workers(4)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);

    let client = Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let request = client
            .post(format!("http://{addr}/api/v1/customers"))
            .header("X-API-KEY", KEY)
            .header("Idempotency-Key", format!("key-{n}"))
            .json(&customer("org_race"));
        tasks.spawn(
            async move { Ok::<u16, reqwest::Error>(request.send().await?.status().as_u16()) },
        );
    }
    let mut statuses: Vec<u16> = tasks
        .join_all()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    statuses.sort_unstable();
    assert_eq!(statuses[0], 201);
    assert!(
        statuses[1..].iter().all(|status| *status == 409),
        "{statuses:?}"
    );
    assert_eq!(emulator.created_count(EntityKind::Customer), 1);

    handle.stop(true).await;
    server_task.await??;
    Ok(())
}

#[tokio::test]
async fn trial_subscription_is_in_trial_with_the_requested_fields() -> TestResult {
    let h = start().await?;
    h.create_customer("org_1").await?;
    let response = h
        .post(
            "/api/v1/subscriptions",
            &trial_subscription("sub_A1", "org_1"),
        )
        .await?;
    let (status, body) = status_and_body(response).await?;
    assert_eq!(status, 201);
    let data = &body["data"];
    assert_eq!(data["id"], "sub_A1");
    assert_eq!(data["status"], "SUCCESS");
    assert_eq!(data["entitlements"], json!([]));
    assert_eq!(data["isScheduled"], false);
    let subscription = &data["subscription"];
    assert_eq!(subscription["id"], "sub_A1");
    assert_eq!(subscription["customerId"], "org_1");
    assert_eq!(subscription["planId"], "plan-pro");
    assert_eq!(subscription["billingId"], "sub_A1");
    assert_eq!(subscription["billingPeriod"], "MONTHLY");
    assert_eq!(subscription["status"], "IN_TRIAL");
    assert_eq!(subscription["trialEndDate"], "2030-01-15T00:00:00.000Z");
    assert_eq!(
        subscription["trial"],
        json!({"trialEndBehavior": "CONVERT_TO_PAID"})
    );
    assert_eq!(subscription["paymentCollectionMethod"], "NONE");
    assert_eq!(subscription["startDate"], "2030-01-01T00:00:00.000Z");
    assert_eq!(subscription["metadata"]["planCode"], "plan_pro_m");
    assert!(subscription["createdAt"].is_string());

    let read = h.get("/api/v1/subscriptions/sub_A1").await?;
    assert_eq!(
        status_and_body(read).await?,
        (200, json!({"data": subscription}))
    );
    assert_eq!(h.emulator().subscriptions(), vec![subscription.clone()]);

    let duplicate = h
        .post(
            "/api/v1/subscriptions",
            &trial_subscription("sub_A1", "org_1"),
        )
        .await?;
    let (status, body) = status_and_body(duplicate).await?;
    assert_eq!(
        (status, &body["code"]),
        (409, &json!("DuplicatedEntityNotAllowed"))
    );

    let missing = h.get("/api/v1/subscriptions/sub_missing").await?;
    let (status, body) = status_and_body(missing).await?;
    assert_eq!(
        (status, &body["code"]),
        (404, &json!("SubscriptionNotFound"))
    );
    assert_eq!(h.emulator().created_count(EntityKind::Subscription), 1);
    Ok(())
}

#[tokio::test]
async fn subscription_refusals_carry_stiggs_codes() -> TestResult {
    let h = start().await?;
    h.create_customer("org_1").await?;
    let cases = [
        (
            json!({"customerId": "org_1", "planId": "plan-nope"}),
            404,
            "PlanNotFound",
        ),
        (
            json!({"customerId": "org_nope", "planId": "plan-pro"}),
            404,
            "CustomerNotFound",
        ),
        (json!({"planId": "plan-pro"}), 400, "BadUserInput"),
        (
            json!({"customerId": "org_1", "planId": "plan-pro", "paymentCollectionMethod": "NONE"}),
            400,
            "BillingPeriodMissingError",
        ),
        (
            json!({"customerId": "org_1", "planId": "plan-business", "billingPeriod": "MONTHLY"}),
            400,
            "BadUserInput",
        ),
        (
            json!({"customerId": "org_1", "planId": "plan-pro", "billingPeriod": "WEEKLY"}),
            400,
            "BadUserInput",
        ),
        (
            json!({"customerId": "org_1", "planId": "plan-free", "metadata": {"n": 1}}),
            400,
            "InvalidMetadataError",
        ),
    ];
    for (request, status, code) in cases {
        let response = h.post("/api/v1/subscriptions", &request).await?;
        let (got_status, body) = status_and_body(response).await?;
        assert_eq!(
            (got_status, body["code"].as_str()),
            (status, Some(code)),
            "{request}"
        );
        assert!(body["message"].is_string());
    }
    assert_eq!(h.emulator().created_count(EntityKind::Subscription), 0);
    Ok(())
}

#[tokio::test]
async fn paid_plan_charged_by_stigg_answers_payment_required_and_creates_nothing() -> TestResult {
    let h = start().await?;
    h.create_customer("org_1").await?;
    let request = json!({"id": "sub_1", "customerId": "org_1", "planId": "plan-pro", "billingPeriod": "ANNUALLY"});
    let (status, body) = status_and_body(h.post("/api/v1/subscriptions", &request).await?).await?;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["status"], "PAYMENT_REQUIRED");
    assert_eq!(body["data"]["subscription"], Value::Null);
    assert!(
        body["data"]["checkoutUrl"]
            .as_str()
            .is_some_and(|url| url.starts_with("https://checkout.example/"))
    );
    assert_eq!(h.emulator().created_count(EntityKind::Subscription), 0);

    // With Stripe billing (`NONE`), the same plan is active straight away.
    let mut not_collected = request.clone();
    not_collected["paymentCollectionMethod"] = json!("NONE");
    let (status, body) =
        status_and_body(h.post("/api/v1/subscriptions", &not_collected).await?).await?;
    assert_eq!(status, 201);
    assert_eq!(body["data"]["subscription"]["status"], "ACTIVE");
    assert_eq!(body["data"]["subscription"]["billingPeriod"], "ANNUALLY");

    // A free plan needs no payment and no billing period; the id is generated.
    let free = json!({"customerId": "org_1", "planId": "plan-free"});
    let (status, body) = status_and_body(h.post("/api/v1/subscriptions", &free).await?).await?;
    assert_eq!(status, 201);
    assert_eq!(body["data"]["subscription"]["status"], "ACTIVE");
    assert!(body["data"]["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(h.emulator().created_count(EntityKind::Subscription), 2);
    Ok(())
}

#[tokio::test]
async fn customer_body_is_validated() -> TestResult {
    let h = start().await?;
    let non_string_metadata = h
        .post(
            "/api/v1/customers",
            &json!({"id": "org_1", "metadata": {"seats": 3}}),
        )
        .await?;
    let (status, body) = status_and_body(non_string_metadata).await?;
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("InvalidMetadataError"))
    );

    for invalid in [
        json!({"name": "no id"}),
        json!({"id": "-bad"}),
        json!({"id": "org", "email": "nope"}),
    ] {
        let (status, body) = status_and_body(h.post("/api/v1/customers", &invalid).await?).await?;
        assert_eq!(
            (status, &body["code"]),
            (400, &json!("BadUserInput")),
            "{invalid}"
        );
    }

    let not_json = h
        .api(Method::POST, "/api/v1/customers")
        .header("Content-Type", "text/plain")
        .body(r#"{"id":"org_1"}"#)
        .send()
        .await?;
    let (status, body) = status_and_body(not_json).await?;
    assert_eq!((status, &body["code"]), (400, &json!("BadUserInput")));
    assert_eq!(h.emulator().created_count(EntityKind::Customer), 0);

    let unknown_route = h.get("/api/v1/customers").await?;
    assert_eq!(unknown_route.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        h.emulator().requests().last().map(|request| request.status),
        Some(404)
    );
    Ok(())
}

#[tokio::test]
async fn status_fault_answers_the_next_matching_requests_then_stops() -> TestResult {
    let h = start().await?;
    h.emulator().push_fault(
        Fault::new(FaultAction::Status {
            status: 503,
            body: None,
            retry_after: Some("1".to_owned()),
            retry_after_ms: Some(250),
        })
        .on_method("post")
        .on_path("/api/v1/customers")
        .times(2),
    );
    // Neither a GET nor another path matches.
    assert_eq!(
        h.get("/api/v1/customers/org_1").await?.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.post("/api/v1/subscriptions", &json!({})).await?.status(),
        StatusCode::BAD_REQUEST
    );

    for _ in 0..2 {
        let response = h
            .post_idempotent("/api/v1/customers", "customer:org_1", &customer("org_1"))
            .await?;
        assert_eq!(header(&response, "retry-after"), Some("1"));
        assert_eq!(header(&response, "retry-after-ms"), Some("250"));
        let (status, body) = status_and_body(response).await?;
        assert_eq!((status, &body["code"]), (503, &json!("InjectedFault")));
    }
    let response = h
        .post_idempotent("/api/v1/customers", "customer:org_1", &customer("org_1"))
        .await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(h.emulator().created_count(EntityKind::Customer), 1);
    assert!(h.emulator().pending_faults().is_empty());

    // Faults come before the key check, and a custom body is sent as is.
    h.emulator().push_fault(Fault::new(FaultAction::Status {
        status: 502,
        body: Some(json!({"error": {"code": "BadGateway", "message": "upstream"}})),
        retry_after: None,
        retry_after_ms: None,
    }));
    let unauthenticated = h
        .client
        .get(h.url("/api/v1/customers/org_1"))
        .send()
        .await?;
    assert_eq!(
        status_and_body(unauthenticated).await?,
        (
            502,
            json!({"error": {"code": "BadGateway", "message": "upstream"}})
        )
    );
    let statuses: Vec<u16> = h
        .emulator()
        .requests()
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(statuses, vec![404, 400, 503, 503, 201, 502]);
    Ok(())
}

#[tokio::test]
async fn delay_fault_outlasts_a_client_timeout_and_otherwise_answers_normally() -> TestResult {
    let h = start().await?;
    h.create_customer("org_1").await?;
    h.emulator()
        .push_fault(Fault::new(FaultAction::Delay { ms: 1_000 }).on_method("GET"));
    let timed_out = h
        .get_with_timeout("/api/v1/customers/org_1", Duration::from_millis(200))
        .await;
    assert!(
        timed_out.as_ref().is_err_and(reqwest::Error::is_timeout),
        "{timed_out:?}"
    );

    h.emulator()
        .push_fault(Fault::new(FaultAction::Delay { ms: 300 }));
    let started = Instant::now();
    let response = h.get("/api/v1/customers/org_1").await?;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(response.status(), StatusCode::OK);
    Ok(())
}

impl Harness {
    async fn get_with_timeout(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<Response, reqwest::Error> {
        self.api(Method::GET, path).timeout(timeout).send().await
    }
}

#[tokio::test]
async fn truncate_fault_sends_the_head_then_fails_the_body_read() -> TestResult {
    let h = start().await?;
    h.emulator().push_fault(Fault::new(FaultAction::Truncate));
    let response = h.post("/api/v1/customers", &customer("org_1")).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let declared: u64 = header(&response, "content-length")
        .context("content-length")?
        .parse()?;
    let body = response.bytes().await;
    // reqwest reports the short body as a decode error caused by hyper's `IncompleteBody`.
    let error = body.err().context("the body read should fail")?;
    assert!(
        error.is_decode() || error.is_body(),
        "{error:?} (declared {declared})"
    );
    assert!(format!("{error:?}").contains("IncompleteBody"), "{error:?}");

    // Nothing was created, the log says what the client saw, and the server still serves.
    assert_eq!(h.emulator().created_count(EntityKind::Customer), 0);
    assert_eq!(h.emulator().requests()[0].status, 200);
    h.create_customer("org_1").await?;
    Ok(())
}

#[tokio::test]
async fn reset_fault_fails_the_send() -> TestResult {
    let h = start().await?;
    h.emulator()
        .push_fault(Fault::new(FaultAction::Reset).times(2));
    for _ in 0..2 {
        let sent = h.post("/api/v1/customers", &customer("org_1")).await;
        let error = sent.err().context("the send should fail")?;
        let error = error
            .downcast::<reqwest::Error>()
            .map_err(|other| anyhow::anyhow!("{other}"))?;
        // No status line ever arrives: a request error caused by hyper's `IncompleteMessage`.
        assert!(
            error.is_request() && !error.is_timeout() && error.status().is_none(),
            "{error:?}"
        );
        assert!(
            format!("{error:?}").contains("IncompleteMessage"),
            "{error:?}"
        );
    }
    assert_eq!(h.emulator().created_count(EntityKind::Customer), 0);
    assert!(
        h.emulator()
            .requests()
            .iter()
            .all(|request| request.status == 0)
    );
    h.create_customer("org_1").await?;
    Ok(())
}

#[tokio::test]
async fn rate_limits_answer_429_with_the_configured_hint() -> TestResult {
    let h = start_with(EmulatorConfig {
        rate_limit: Some(RateLimit {
            per_operation_per_minute: 2,
            per_customer_per_minute: 0,
            retry_after: RetryAfterHint::Seconds,
        }),
        ..EmulatorConfig::default()
    })
    .await?;
    h.create_customer("org_1").await?;
    h.create_customer("org_2").await?;
    let limited = h.post("/api/v1/customers", &customer("org_3")).await?;
    let retry_after: u64 = header(&limited, "retry-after")
        .context("retry-after")?
        .parse()?;
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(header(&limited, "retry-after-ms").is_none());
    assert_eq!(
        status_and_body(limited).await?,
        (
            429,
            json!({"code": "RateLimitExceeded", "message": "Too many requests"})
        )
    );
    // Reads are not limited, and other operations have their own window.
    assert_eq!(
        h.get("/api/v1/customers/org_1").await?.status(),
        StatusCode::OK
    );
    let free = json!({"customerId": "org_1", "planId": "plan-free"});
    assert_eq!(
        h.post("/api/v1/subscriptions", &free).await?.status(),
        StatusCode::CREATED
    );

    // Per customer, shared by both operations, with a millisecond hint.
    h.emulator().set_rate_limit(Some(RateLimit {
        per_operation_per_minute: 0,
        per_customer_per_minute: 1,
        retry_after: RetryAfterHint::Millis,
    }));
    h.emulator().reset();
    h.create_customer("org_9").await?;
    let free = json!({"customerId": "org_9", "planId": "plan-free"});
    let limited = h.post("/api/v1/subscriptions", &free).await?;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after_ms: u64 = header(&limited, "retry-after-ms")
        .context("retry-after-ms")?
        .parse()?;
    assert!((1..=60_000).contains(&retry_after_ms), "{retry_after_ms}");
    assert!(header(&limited, "retry-after").is_none());
    h.create_customer("org_10").await?;

    // Without a hint, as Stigg's Edge API.
    h.emulator().reset();
    h.emulator().set_rate_limit(Some(RateLimit {
        per_operation_per_minute: 1,
        per_customer_per_minute: 0,
        retry_after: RetryAfterHint::None,
    }));
    h.create_customer("org_1").await?;
    let limited = h.post("/api/v1/customers", &customer("org_2")).await?;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        header(&limited, "retry-after").is_none() && header(&limited, "retry-after-ms").is_none()
    );

    h.emulator().set_rate_limit(None);
    h.create_customer("org_2").await?;
    Ok(())
}

#[tokio::test]
async fn request_log_records_what_was_sent_and_answered() -> TestResult {
    let h = start().await?;
    let response = h
        .api(Method::POST, "/api/v1/customers")
        .header("Idempotency-Key", "customer:org_1")
        .header("x-correlation-id", "corr-123")
        .header("User-Agent", "onboarding/0.1.0")
        .json(&customer("org_1"))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    h.get("/api/v1/customers/org_1").await?;

    let log = h.emulator().requests();
    assert_eq!(log.len(), 2);
    let create = &log[0];
    assert_eq!(create.method, "POST");
    assert_eq!(create.path, "/api/v1/customers");
    assert_eq!(create.idempotency_key.as_deref(), Some("customer:org_1"));
    assert_eq!(create.correlation_id.as_deref(), Some("corr-123"));
    assert_eq!(create.user_agent.as_deref(), Some("onboarding/0.1.0"));
    assert!(create.api_key_valid);
    assert_eq!(create.body.as_ref(), Some(&customer("org_1")));
    assert_eq!(create.status, 201);
    let read = &log[1];
    assert_eq!(
        (read.method.as_str(), read.path.as_str(), read.status),
        ("GET", "/api/v1/customers/org_1", 200)
    );
    assert_eq!(
        (
            read.idempotency_key.as_ref(),
            read.correlation_id.as_ref(),
            read.body.as_ref()
        ),
        (None, None, None)
    );
    assert!(create.at <= read.at);
    Ok(())
}

#[tokio::test]
async fn admin_routes_drive_the_emulator_over_http() -> TestResult {
    let h = start().await?;
    let admin = |path: &str| h.url(&format!("/_emulator{path}"));

    assert_eq!(
        h.client.get(admin("/health")).send().await?.status(),
        StatusCode::OK
    );

    let fault = json!({
        "method": "POST",
        "pathPrefix": "/api/v1/customers",
        "times": 1,
        "action": {"type": "status", "status": 503, "retryAfter": "2"}
    });
    let queued = h.client.post(admin("/faults")).json(&fault).send().await?;
    assert_eq!(queued.status(), StatusCode::CREATED);
    let delay = json!({"action": {"type": "delay", "ms": 1}});
    h.client.post(admin("/faults")).json(&delay).send().await?;
    let pending: Vec<Fault> = h.client.get(admin("/faults")).send().await?.json().await?;
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[1].action, FaultAction::Delay { ms: 1 });
    let cleared: Value = h
        .client
        .delete(admin("/faults"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(cleared, json!([]));
    h.client.post(admin("/faults")).json(&fault).send().await?;
    for invalid in [
        json!({"action": {"type": "explode"}}),
        json!({"times": 0, "action": {"type": "reset"}}),
    ] {
        let refused = h
            .client
            .post(admin("/faults"))
            .json(&invalid)
            .send()
            .await?;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{invalid}");
    }

    let limit =
        json!({"perOperationPerMinute": 1, "perCustomerPerMinute": 30, "retryAfter": "none"});
    let set: Value = h
        .client
        .put(admin("/rate-limit"))
        .json(&limit)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(set, json!({"rateLimit": limit}));

    let faulted = h.post("/api/v1/customers", &customer("org_1")).await?;
    assert_eq!(faulted.status(), StatusCode::SERVICE_UNAVAILABLE);
    h.create_customer("org_1").await?;
    let limited = h.post("/api/v1/customers", &customer("org_2")).await?;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let off = h
        .client
        .put(admin("/rate-limit"))
        .json(&Value::Null)
        .send()
        .await?;
    assert_eq!(off.status(), StatusCode::OK);
    assert_eq!(h.emulator().rate_limit(), None);
    h.create_customer("org_2").await?;

    let requests: Vec<Value> = h
        .client
        .get(admin("/requests"))
        .send()
        .await?
        .json()
        .await?;
    let statuses: Vec<&Value> = requests.iter().map(|request| &request["status"]).collect();
    assert_eq!(
        statuses,
        vec![&json!(503), &json!(201), &json!(429), &json!(201)]
    );
    assert_eq!(requests[0]["apiKeyValid"], true);
    assert_eq!(requests[0]["body"]["id"], "org_1");

    let state: Value = h.client.get(admin("/state")).send().await?.json().await?;
    assert_eq!(
        state["createdCounts"],
        json!({"customers": 2, "subscriptions": 0})
    );
    assert_eq!(state["customers"][1]["id"], "org_2");
    assert_eq!(state["subscriptions"], json!([]));
    assert_eq!(state["pendingFaults"], json!([]));

    let reset = h.client.post(admin("/reset")).send().await?;
    assert_eq!(reset.status(), StatusCode::OK);
    let state: Value = h.client.get(admin("/state")).send().await?.json().await?;
    assert_eq!(
        state["createdCounts"],
        json!({"customers": 0, "subscriptions": 0})
    );
    assert!(
        h.emulator().requests().is_empty(),
        "admin calls are not logged"
    );
    Ok(())
}

#[tokio::test]
async fn stop_closes_the_listener() -> TestResult {
    let h = start().await?;
    let url = h.url("/_emulator/health");
    assert_eq!(h.client.get(&url).send().await?.status(), StatusCode::OK);
    let Harness { running, .. } = h;
    assert!(running.base_url().starts_with("http://127.0.0.1:"));
    assert_ne!(running.addr().port(), 0);
    running.stop().await;
    assert!(Client::new().get(&url).send().await.is_err());
    Ok(())
}
