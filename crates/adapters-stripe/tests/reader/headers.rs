//! What the emulator cannot script, against wiremock: Stripe's `Retry-After` and
//! `Stripe-Should-Retry` headers, the request's own headers, and answers that do not read.

use std::time::Duration;

use onboarding_adapters_stripe::STRIPE_API_VERSION;
use onboarding_domain::ports::{StripeError, StripeReader};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{KEY, RecordingSleeper, TestResult, client_with, config, ctx15, cus, sub};

fn customer_json(id: &str) -> Value {
    json!({"id": id, "object": "customer", "email": null, "metadata": {}})
}

fn stripe_error(kind: &str, message: &str) -> Value {
    json!({"error": {"type": kind, "message": message}})
}

async fn answer_once(server: &MockServer, route: &str, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(response)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
}

async fn answer_always(server: &MockServer, route: &str, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(response)
        .with_priority(2)
        .mount(server)
        .await;
}

#[tokio::test]
async fn every_request_carries_the_key_and_the_pinned_version() -> TestResult {
    let server = MockServer::start().await;
    answer_always(
        &server,
        "/v1/customers/cus_H1",
        ResponseTemplate::new(200).set_body_json(customer_json("cus_H1")),
    )
    .await;
    let client = client_with(config(&server.uri()), RecordingSleeper::instant());

    client.customer(&cus("cus_H1"), &ctx15()).await?;

    let received = server.received_requests().await.unwrap_or_default();
    assert_eq!(received.len(), 1);
    let header = |name: &str| {
        received[0]
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("authorization"), Some(format!("Bearer {KEY}")));
    assert_eq!(
        header("stripe-version").as_deref(),
        Some(STRIPE_API_VERSION)
    );
    assert_eq!(header("accept").as_deref(), Some("application/json"));
    assert!(header("user-agent").is_some_and(|ua| ua.starts_with("onboarding/")));
    Ok(())
}

#[tokio::test]
async fn retry_after_is_honoured() -> TestResult {
    let server = MockServer::start().await;
    answer_once(
        &server,
        "/v1/customers/cus_H2",
        ResponseTemplate::new(429)
            .insert_header("retry-after", "2")
            .set_body_json(stripe_error("invalid_request_error", "Too many requests")),
    )
    .await;
    answer_always(
        &server,
        "/v1/customers/cus_H2",
        ResponseTemplate::new(200).set_body_json(customer_json("cus_H2")),
    )
    .await;
    let sleeper = RecordingSleeper::instant();
    let client = client_with(config(&server.uri()), sleeper.clone());

    let read = client.customer(&cus("cus_H2"), &ctx15()).await?;

    assert!(read.is_some());
    assert_eq!(sleeper.sleeps(), [Duration::from_secs(2)]);
    Ok(())
}

#[tokio::test]
async fn stripe_should_retry_false_stops_a_5xx_at_once() -> TestResult {
    let server = MockServer::start().await;
    answer_always(
        &server,
        "/v1/subscriptions/sub_H3",
        ResponseTemplate::new(500)
            .insert_header("stripe-should-retry", "false")
            .set_body_json(stripe_error("api_error", "Something went wrong")),
    )
    .await;
    let sleeper = RecordingSleeper::instant();
    let client = client_with(config(&server.uri()), sleeper.clone());

    let error = client
        .subscription(&sub("sub_H3"), &ctx15())
        .await
        .expect_err("a 500");

    assert_eq!(
        error,
        StripeError::Unavailable {
            attempts: 1,
            cause: "HTTP 500".into()
        }
    );
    assert!(sleeper.sleeps().is_empty());
    assert_eq!(
        server.received_requests().await.unwrap_or_default().len(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn stripe_should_retry_true_retries_a_409() -> TestResult {
    let server = MockServer::start().await;
    answer_once(
        &server,
        "/v1/customers/cus_H4",
        ResponseTemplate::new(409)
            .insert_header("stripe-should-retry", "true")
            .set_body_json(json!({"error": {"type": "invalid_request_error",
                "code": "lock_timeout", "message": "This object cannot be accessed right now"}})),
    )
    .await;
    answer_always(
        &server,
        "/v1/customers/cus_H4",
        ResponseTemplate::new(200).set_body_json(customer_json("cus_H4")),
    )
    .await;
    let sleeper = RecordingSleeper::instant();
    let client = client_with(config(&server.uri()), sleeper.clone());

    let read = client.customer(&cus("cus_H4"), &ctx15()).await?;

    assert!(read.is_some());
    assert_eq!(sleeper.sleeps(), [Duration::from_millis(500)]);
    Ok(())
}

#[tokio::test]
async fn unreadable_answers_are_invalid_and_not_retried() -> TestResult {
    let server = MockServer::start().await;
    answer_always(
        &server,
        "/v1/subscriptions/sub_Empty",
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "sub_Empty", "object": "subscription", "customer": "cus_1",
            "status": "active", "items": {"object": "list", "data": []}
        })),
    )
    .await;
    answer_always(
        &server,
        "/v1/customers/cus_Html",
        ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
    )
    .await;
    answer_always(
        &server,
        "/v1/customers/cus_Asked",
        ResponseTemplate::new(200).set_body_json(customer_json("cus_Other")),
    )
    .await;
    let sleeper = RecordingSleeper::instant();
    let client = client_with(config(&server.uri()), sleeper.clone());

    let empty = client.subscription(&sub("sub_Empty"), &ctx15()).await;
    let html = client.customer(&cus("cus_Html"), &ctx15()).await;
    let other = client.customer(&cus("cus_Asked"), &ctx15()).await;

    assert_eq!(
        empty,
        Err(StripeError::InvalidResponse(
            "subscription 'sub_Empty' has no items".into()
        ))
    );
    assert!(
        matches!(&html, Err(StripeError::InvalidResponse(why)) if why.contains("not JSON")),
        "{html:?}"
    );
    assert_eq!(
        other,
        Err(StripeError::InvalidResponse(
            "asked for customer 'cus_Asked', Stripe answered 'cus_Other'".into()
        ))
    );
    assert!(sleeper.sleeps().is_empty());
    Ok(())
}
