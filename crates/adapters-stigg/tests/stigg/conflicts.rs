//! 409 on create: read the entity back, accept it when it matches, report it when not.

use onboarding_adapters_stigg::HttpStiggGateway;
use onboarding_domain::ports::{StiggCustomer, StiggError, StiggGateway, StiggSubscription};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

fn duplicate() -> ResponseTemplate {
    ResponseTemplate::new(409).set_body_json(error_body(
        "DuplicatedEntityNotAllowed",
        "Duplicated entity not allowed",
    ))
}

async fn mount_create_conflict(server: &MockServer, route: &str) {
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(duplicate())
        .expect(1) // 409 is never retried
        .mount(server)
        .await;
}

async fn mount_read(server: &MockServer, route: &str, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(answer)
        .expect(1)
        .mount(server)
        .await;
}

fn stored_customer(billing_id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "data": {
        "id": ORG_ID, "name": "Acme Inc", "billingId": billing_id,
        "metadata": {}, "createdAt": "2026-08-20T10:00:00.000Z"
    }}))
}

#[tokio::test]
async fn existing_identical_customer_counts_as_created() -> TestResult {
    let server = MockServer::start().await;
    mount_create_conflict(&server, "/api/v1/customers").await;
    mount_read(
        &server,
        "/api/v1/customers/org_8Yp2",
        stored_customer(STRIPE_CUSTOMER),
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await?;

    assert_eq!(result, StiggCustomer { id: ORG_ID.into() });
    let requests = received(&server).await;
    let read = &requests[1];
    assert_eq!(read.method.as_str(), "GET");
    assert_eq!(header(read, "x-api-key"), Some(API_KEY));
    assert_eq!(header(read, "x-correlation-id"), Some(CORRELATION_ID));
    assert_eq!(header(read, "accept"), Some("application/json"));
    assert_eq!(header(read, "idempotency-key"), None);
    Ok(())
}

#[tokio::test]
async fn existing_customer_with_another_billing_id_is_a_conflict() -> TestResult {
    let server = MockServer::start().await;
    mount_create_conflict(&server, "/api/v1/customers").await;
    mount_read(
        &server,
        "/api/v1/customers/org_8Yp2",
        stored_customer("cus_Other1"),
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    let expected = StiggError::Conflict {
        entity: "customer",
        id: ORG_ID.into(),
        difference: "billingId is 'cus_Other1', expected 'cus_Q1w2E3'".into(),
    };
    assert_eq!(result, Err(expected.clone()));
    assert_eq!(
        expected.to_string(),
        "customer 'org_8Yp2' exists in Stigg with different data (billingId is 'cus_Other1', expected 'cus_Q1w2E3')"
    );
    Ok(())
}

#[tokio::test]
async fn existing_identical_subscription_counts_as_created() -> TestResult {
    let server = MockServer::start().await;
    mount_create_conflict(&server, "/api/v1/subscriptions").await;
    mount_read(
        &server,
        "/api/v1/subscriptions/sub_9Zx8Y7",
        ResponseTemplate::new(200)
            .set_body_json(json!({ "data": subscription_record("plan-starter", "MONTHLY") })),
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let result = gateway
        .provision_subscription(&trialing_subscription()?, &ctx15()?)
        .await?;

    assert_eq!(
        result,
        StiggSubscription {
            id: STRIPE_SUBSCRIPTION.into()
        }
    );
    Ok(())
}

#[tokio::test]
async fn existing_subscription_on_another_plan_is_a_conflict() -> TestResult {
    let server = MockServer::start().await;
    mount_create_conflict(&server, "/api/v1/subscriptions").await;
    mount_read(
        &server,
        "/api/v1/subscriptions/sub_9Zx8Y7",
        ResponseTemplate::new(200)
            .set_body_json(json!({ "data": subscription_record("plan-pro", "ANNUALLY") })),
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let result = gateway
        .provision_subscription(&trialing_subscription()?, &ctx15()?)
        .await;

    assert_eq!(
        result,
        Err(StiggError::Conflict {
            entity: "subscription",
            id: STRIPE_SUBSCRIPTION.into(),
            difference: "planId is 'plan-pro', expected 'plan-starter'; \
                         billingPeriod is 'ANNUALLY', expected 'MONTHLY'"
                .into(),
        })
    );
    Ok(())
}

#[tokio::test]
async fn existing_subscription_of_another_customer_is_a_conflict() -> TestResult {
    let server = MockServer::start().await;
    mount_create_conflict(&server, "/api/v1/subscriptions").await;
    let mut record = subscription_record("plan-starter", "MONTHLY");
    record["customerId"] = json!("org_other");
    if let Some(fields) = record.as_object_mut() {
        fields.remove("billingPeriod"); // absent: not compared
    }
    mount_read(
        &server,
        "/api/v1/subscriptions/sub_9Zx8Y7",
        ResponseTemplate::new(200).set_body_json(json!({ "data": record })),
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let result = gateway
        .provision_subscription(&trialing_subscription()?, &ctx15()?)
        .await;

    assert_eq!(
        result,
        Err(StiggError::Conflict {
            entity: "subscription",
            id: STRIPE_SUBSCRIPTION.into(),
            difference: "customerId is 'org_other', expected 'org_8Yp2'".into(),
        })
    );
    Ok(())
}

#[tokio::test]
async fn read_back_is_retried_on_transient_failures() -> TestResult {
    let server = MockServer::start().await;
    mount_create_conflict(&server, "/api/v1/customers").await;
    Mock::given(method("GET"))
        .and(path("/api/v1/customers/org_8Yp2"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_read(
        &server,
        "/api/v1/customers/org_8Yp2",
        stored_customer(STRIPE_CUSTOMER),
    )
    .await;
    let sleeper = RecordingSleeper::instant();
    let gateway = gateway_with(config_for(&server), sleeper.clone())?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await?;

    assert_eq!(result.id, ORG_ID);
    assert_eq!(sleeper.sleeps().len(), 1);
    Ok(())
}

#[tokio::test]
async fn read_back_not_found_is_rejected_with_stiggs_code() -> TestResult {
    let server = MockServer::start().await;
    mount_create_conflict(&server, "/api/v1/customers").await;
    mount_read(
        &server,
        "/api/v1/customers/org_8Yp2",
        ResponseTemplate::new(404)
            .set_body_json(error_body("CustomerNotFound", "Customer not found")),
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    assert_eq!(
        result,
        Err(StiggError::Rejected {
            operation: "read_customer",
            status: 404,
            code: "CustomerNotFound".into(),
            message: "Customer not found".into(),
        })
    );
    Ok(())
}
