//! Against the bundled Stigg emulator: the adapter and the emulator agree on the contract.

use std::time::Duration;

use chrono::{DateTime, Utc};
use onboarding_adapters_stigg::HttpStiggGateway;
use onboarding_domain::ports::{StiggError, StiggGateway};
use serde_json::{Value, json};
use stigg_emulator::{
    EmulatorConfig, EntityKind, Fault, FaultAction, RateLimit, RetryAfterHint, RunningEmulator,
    Scoped,
};

use crate::support::*;

pub async fn start() -> Result<RunningEmulator, Box<dyn std::error::Error>> {
    start_with(EmulatorConfig {
        api_key: API_KEY.into(),
        ..EmulatorConfig::default()
    })
    .await
}

pub async fn start_with(
    config: EmulatorConfig,
) -> Result<RunningEmulator, Box<dyn std::error::Error>> {
    Ok(RunningEmulator::start_on_loopback(config).await?)
}

/// Creates an entity the way another system would: straight to the API, with no idempotency
/// key, so that our own create meets a 409 rather than a replay.
async fn create_elsewhere(
    running: &RunningEmulator,
    route: &str,
    body: Value,
) -> Result<(), Box<dyn std::error::Error>> {
    let response = reqwest::Client::new()
        .post(format!("{}{route}", running.base_url()))
        .header("x-api-key", API_KEY)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    if response.status().as_u16() != 201 {
        return Err(format!("setup create answered {}", response.status()).into());
    }
    Ok(())
}

#[tokio::test]
async fn provisions_a_customer_and_its_trialing_subscription() -> TestResult {
    let running = start().await?;
    let gateway = HttpStiggGateway::new(config(&running.base_url()))?;
    let ctx = ctx15()?;

    let customer = gateway.provision_customer(&customer()?, &ctx).await?;
    let subscription = gateway
        .provision_subscription(&trialing_subscription()?, &ctx)
        .await?;

    assert_eq!(customer.id, ORG_ID);
    assert_eq!(subscription.id, STRIPE_SUBSCRIPTION);
    let emulator = running.emulator();
    assert_eq!(emulator.created_count(EntityKind::Customer), 1);
    assert_eq!(emulator.created_count(EntityKind::Subscription), 1);
    let stored_customer = &emulator.customers()[0];
    assert_eq!(stored_customer["billingId"], STRIPE_CUSTOMER);
    assert_eq!(stored_customer["email"], "owner@acme.test");
    assert_eq!(
        stored_customer["metadata"],
        json!({ "orgId": ORG_ID, "stripeCustomerId": STRIPE_CUSTOMER, "tenantId": "tenant-1" })
    );
    let stored_subscription = &emulator.subscriptions()[0];
    assert_eq!(stored_subscription["customerId"], ORG_ID);
    assert_eq!(stored_subscription["planId"], "plan-starter");
    assert_eq!(stored_subscription["billingPeriod"], "MONTHLY");
    assert_eq!(stored_subscription["status"], "IN_TRIAL");
    assert_eq!(stored_subscription["paymentCollectionMethod"], "NONE");
    assert_eq!(
        stored_subscription["trial"]["trialEndBehavior"],
        "CONVERT_TO_PAID"
    );
    let stored_trial_end: DateTime<Utc> = stored_subscription["trialEndDate"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    assert_eq!(stored_trial_end, trial_end()?);

    let requests = emulator.requests();
    assert_eq!(requests.len(), 2);
    let keys: Vec<_> = requests
        .iter()
        .map(|r| r.idempotency_key.as_deref())
        .collect();
    assert_eq!(
        keys,
        [Some("customer:org_8Yp2"), Some("subscription:sub_9Zx8Y7")]
    );
    for request in &requests {
        assert!(request.api_key_valid);
        assert_eq!(request.correlation_id.as_deref(), Some(CORRELATION_ID));
        assert_eq!(request.user_agent.as_deref(), Some(USER_AGENT));
        assert_eq!(request.status, 201);
    }
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn repeating_a_provisioning_creates_nothing_more() -> TestResult {
    let running = start().await?;
    let gateway = HttpStiggGateway::new(config(&running.base_url()))?;

    for _ in 0..2 {
        let ctx = ctx15()?;
        gateway.provision_customer(&customer()?, &ctx).await?;
        gateway
            .provision_subscription(&trialing_subscription()?, &ctx)
            .await?;
    }

    // The repeat carries the same idempotency keys, so the emulator replays its first answers.
    let emulator = running.emulator();
    assert_eq!(emulator.created_count(EntityKind::Customer), 1);
    assert_eq!(emulator.created_count(EntityKind::Subscription), 1);
    assert_eq!(emulator.requests().len(), 4);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn entities_that_exist_already_are_read_back_after_a_409() -> TestResult {
    let running = start().await?;
    create_elsewhere(
        &running,
        "/api/v1/customers",
        json!({ "id": ORG_ID, "name": "Acme", "billingId": STRIPE_CUSTOMER }),
    )
    .await?;
    create_elsewhere(
        &running,
        "/api/v1/subscriptions",
        json!({
            "id": STRIPE_SUBSCRIPTION, "customerId": ORG_ID, "planId": "plan-starter",
            "billingPeriod": "MONTHLY", "paymentCollectionMethod": "NONE"
        }),
    )
    .await?;
    let gateway = HttpStiggGateway::new(config(&running.base_url()))?;
    let ctx = ctx15()?;

    let customer = gateway.provision_customer(&customer()?, &ctx).await?;
    let subscription = gateway
        .provision_subscription(&trialing_subscription()?, &ctx)
        .await?;

    assert_eq!(customer.id, ORG_ID);
    assert_eq!(subscription.id, STRIPE_SUBSCRIPTION);
    let emulator = running.emulator();
    assert_eq!(emulator.created_count(EntityKind::Customer), 1);
    assert_eq!(emulator.created_count(EntityKind::Subscription), 1);
    let ours: Vec<_> = emulator
        .requests()
        .into_iter()
        .skip(2)
        .map(|r| (r.method, r.path, r.status))
        .collect();
    assert_eq!(
        ours,
        [
            ("POST".into(), "/api/v1/customers".into(), 409),
            ("GET".into(), "/api/v1/customers/org_8Yp2".into(), 200),
            ("POST".into(), "/api/v1/subscriptions".into(), 409),
            ("GET".into(), "/api/v1/subscriptions/sub_9Zx8Y7".into(), 200),
        ]
    );
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_customer_billed_elsewhere_is_a_conflict() -> TestResult {
    let running = start().await?;
    create_elsewhere(
        &running,
        "/api/v1/customers",
        json!({ "id": ORG_ID, "billingId": "cus_Someone1" }),
    )
    .await?;
    let gateway = HttpStiggGateway::new(config(&running.base_url()))?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    assert_eq!(
        result,
        Err(StiggError::Conflict {
            entity: "customer",
            id: ORG_ID.into(),
            difference: "billingId is 'cus_Someone1', expected 'cus_Q1w2E3'".into(),
        })
    );
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn two_503_faults_then_success() -> TestResult {
    let running = start().await?;
    running.emulator().push_fault(
        Fault::status(503)
            .on_method("POST")
            .on_path("/api/v1/customers")
            .times(2),
    );
    let sleeper = RecordingSleeper::instant();
    let gateway = gateway_with(config(&running.base_url()), sleeper.clone())?;

    let created = gateway.provision_customer(&customer()?, &ctx15()?).await?;

    assert_eq!(created.id, ORG_ID);
    let emulator = running.emulator();
    assert_eq!(emulator.created_count(EntityKind::Customer), 1);
    let attempts: Vec<_> = emulator
        .requests()
        .into_iter()
        .map(|r| (r.status, r.idempotency_key))
        .collect();
    let key = Some("customer:org_8Yp2".to_owned());
    assert_eq!(
        attempts,
        [(503, key.clone()), (503, key.clone()), (201, key)]
    );
    assert_eq!(sleeper.sleeps().len(), 2);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn truncated_reset_and_slow_answers_are_retried() -> TestResult {
    let running = start().await?;
    let emulator = running.emulator();
    let on_customers = |action| Fault::new(action).on_path("/api/v1/customers");
    emulator.push_fault(on_customers(FaultAction::Truncate));
    emulator.push_fault(on_customers(FaultAction::Reset));
    emulator.push_fault(on_customers(FaultAction::Delay { ms: 1500 }));
    let mut config = config(&running.base_url());
    config.max_attempts = 4;
    config.attempt_timeout = Duration::from_millis(500);
    let gateway = gateway_with(config, RecordingSleeper::instant())?;

    let created = gateway.provision_customer(&customer()?, &ctx15()?).await?;

    assert_eq!(created.id, ORG_ID);
    assert_eq!(emulator.requests().len(), 4);
    assert_eq!(emulator.created_count(EntityKind::Customer), 1);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn persistent_truncation_is_reported_as_such() -> TestResult {
    let running = start().await?;
    running
        .emulator()
        .push_fault(Fault::new(FaultAction::Truncate).times(3));
    let gateway = gateway_with(config(&running.base_url()), RecordingSleeper::instant())?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    assert_eq!(result, Err(unavailable(3, "truncated response body")));
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn stiggs_429_with_a_hint_past_the_deadline_stops_at_once() -> TestResult {
    let running = start_with(EmulatorConfig {
        api_key: API_KEY.into(),
        rate_limit: Some(RateLimit {
            per_operation_per_minute: 1,
            per_customer_per_minute: 0,
            retry_after: RetryAfterHint::Seconds,
        }),
        ..EmulatorConfig::default()
    })
    .await?;
    let sleeper = RecordingSleeper::instant();
    let gateway = gateway_with(config(&running.base_url()), sleeper.clone())?;
    let mut other = customer()?;
    other.customer_id = "org_other".parse()?;
    gateway.provision_customer(&customer()?, &ctx15()?).await?;

    // The emulator's window is a minute: the hint is past a 15 s deadline, so we stop at once.
    let result = gateway.provision_customer(&other, &ctx15()?).await;

    assert_eq!(result, Err(unavailable(1, "HTTP 429")));
    assert!(sleeper.sleeps().is_empty(), "{:?}", sleeper.sleeps());
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_429_retry_after_within_the_deadline_is_honoured() -> TestResult {
    let running = start().await?;
    running
        .emulator()
        .push_fault(Fault::new(FaultAction::Status {
            status: 429,
            body: None,
            retry_after: Some("1".into()),
            retry_after_ms: None,
        }));
    let sleeper = RecordingSleeper::instant();
    let gateway = gateway_with(config(&running.base_url()), sleeper.clone())?;

    gateway.provision_customer(&customer()?, &ctx15()?).await?;

    assert_eq!(sleeper.sleeps(), vec![Duration::from_secs(1)]);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn persistent_resets_are_reported_as_connection_failures() -> TestResult {
    let running = start().await?;
    running
        .emulator()
        .push_fault(Fault::new(FaultAction::Reset).times(3));
    let gateway = gateway_with(config(&running.base_url()), RecordingSleeper::instant())?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    assert_eq!(result, Err(unavailable(3, "connection error")));
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_wrong_api_key_is_unauthorized() -> TestResult {
    let running = start().await?;
    let mut config = config(&running.base_url());
    config.api_key = "server-wrong-key".into();
    let gateway = HttpStiggGateway::new(config)?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    assert_eq!(result, Err(StiggError::Unauthorized));
    assert!(!format!("{result:?} {gateway:?}").contains("server-wrong-key"));
    let requests = running.emulator().requests();
    assert_eq!(requests.len(), 1, "not retried");
    assert!(!requests[0].api_key_valid);
    assert_eq!(running.emulator().created_count(EntityKind::Customer), 0);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_unknown_plan_is_rejected_with_plan_not_found() -> TestResult {
    let running = start().await?;
    let observer = RecordingObserver::new();
    let gateway = HttpStiggGateway::builder(config(&running.base_url()))
        .observer(observer.clone())
        .build()?;
    let ctx = ctx15()?;
    gateway.provision_customer(&customer()?, &ctx).await?;
    let mut unknown = trialing_subscription()?;
    unknown.stigg_plan_id = "plan-gold".into();

    let result = gateway.provision_subscription(&unknown, &ctx).await;

    match result {
        Err(StiggError::Rejected {
            operation: "provision_subscription",
            status: 404,
            code,
            message,
        }) => {
            assert_eq!(code, "PlanNotFound");
            assert!(message.contains("plan-gold"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(running.emulator().requests().len(), 2, "not retried");
    assert_eq!(
        observer.outcomes(),
        [
            ("provision_customer", "success"),
            ("provision_subscription", "failed"),
        ]
    );
    running.stop().await;
    Ok(())
}
