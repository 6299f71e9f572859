//! The client-side rate limit: shared by every clone of a gateway, one bucket per operation,
//! fail fast when the next token would come after the deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use onboarding_adapters_stigg::HttpStiggGateway;
use onboarding_domain::ports::{StiggError, StiggGateway};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

async fn customer_route(server: &MockServer, answer: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path("/api/v1/customers"))
        .respond_with(answer)
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn refuses_without_calling_when_the_next_token_is_past_the_deadline() -> TestResult {
    let server = MockServer::start().await;
    customer_route(
        &server,
        ResponseTemplate::new(201).set_body_json(customer_created_body()),
        1,
    )
    .await;
    let mut config = config_for(&server);
    config.calls_per_minute = 1;
    let sleeper = RecordingSleeper::instant();
    let observer = Arc::new(RecordingObserver::default());
    let gateway = HttpStiggGateway::builder(config)
        .sleeper(sleeper.clone())
        .observer(observer.clone())
        .build()?;
    gateway.provision_customer(&customer()?, &ctx15()?).await?;

    // The bucket is empty for a minute; a 5 s deadline cannot wait for it.
    let started = Instant::now();
    let refused = gateway
        .provision_customer(&customer()?, &ctx(Duration::from_secs(5))?)
        .await;
    // Clones share the bucket.
    let clone = gateway.clone();
    let refused_too = clone
        .provision_customer(&customer()?, &ctx(Duration::from_secs(5))?)
        .await;

    assert_eq!(refused, Err(StiggError::RateLimited));
    assert_eq!(refused_too, Err(StiggError::RateLimited));
    assert_eq!(
        StiggError::RateLimited.to_string(),
        "Stigg rate limit reached, retry later"
    );
    assert!(started.elapsed() < Duration::from_millis(200));
    assert!(
        sleeper.sleeps().is_empty(),
        "no waiting: {:?}",
        sleeper.sleeps()
    );
    assert_eq!(received(&server).await.len(), 1, "no call");
    assert_eq!(
        observer.outcomes(),
        [
            ("provision_customer", "success"),
            ("provision_customer", "rate_limited"),
            ("provision_customer", "rate_limited"),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn waits_for_a_token_that_comes_before_the_deadline() -> TestResult {
    let server = MockServer::start().await;
    customer_route(
        &server,
        ResponseTemplate::new(201).set_body_json(customer_created_body()),
        4,
    )
    .await;
    let mut config = config_for(&server);
    config.calls_per_minute = 123; // three banked, then one every 500 ms
    let sleeper = RecordingSleeper::real();
    let gateway = gateway_with(config, sleeper.clone())?;

    for _ in 0..3 {
        gateway.provision_customer(&customer()?, &ctx15()?).await?;
    }
    assert!(sleeper.sleeps().is_empty(), "{:?}", sleeper.sleeps());
    gateway.provision_customer(&customer()?, &ctx15()?).await?;

    let waited: Duration = sleeper.sleeps().iter().sum();
    assert!(waited > Duration::ZERO, "{:?}", sleeper.sleeps());
    assert!(waited <= Duration::from_millis(500), "{waited:?}");
    Ok(())
}

#[tokio::test]
async fn operations_and_read_backs_have_their_own_buckets() -> TestResult {
    let server = MockServer::start().await;
    customer_route(
        &server,
        ResponseTemplate::new(409).set_body_json(error_body(
            "DuplicatedEntityNotAllowed",
            "Duplicated entity not allowed",
        )),
        1,
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/customers/org_8Yp2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "id": ORG_ID, "billingId": STRIPE_CUSTOMER }
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/subscriptions"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(subscription_provisioned_body("SUCCESS")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut config = config_for(&server);
    config.calls_per_minute = 1;
    let gateway = HttpStiggGateway::new(config)?;

    gateway.provision_customer(&customer()?, &ctx15()?).await?;
    gateway
        .provision_subscription(&trialing_subscription()?, &ctx15()?)
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_retry_that_would_wait_past_the_deadline_reports_the_failure() -> TestResult {
    let server = MockServer::start().await;
    customer_route(&server, ResponseTemplate::new(503), 1).await;
    let mut config = config_for(&server);
    config.calls_per_minute = 1;
    let gateway = gateway_with(config, RecordingSleeper::instant())?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    assert_eq!(
        result,
        Err(StiggError::Unavailable {
            attempts: 1,
            cause: "HTTP 503".into()
        })
    );
    Ok(())
}
