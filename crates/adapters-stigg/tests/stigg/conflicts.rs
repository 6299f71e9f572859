//! 409 on create: read the entity back, accept it when it matches, report it when not.

use onboarding_adapters_stigg::HttpStiggGateway;
use onboarding_domain::ports::{StiggCustomer, StiggError, StiggGateway, StiggSubscription};
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

use crate::support::*;

/// 409 is never retried: exactly one create.
async fn mount_create_conflict(server: &MockServer, route: &str) {
    mount_post(server, route, duplicate(), 1).await;
}

fn stored_customer(billing_id: &str) -> ResponseTemplate {
    found(json!({
        "id": ORG_ID, "name": "Acme Inc", "billingId": billing_id,
        "metadata": {}, "createdAt": "2026-08-20T10:00:00.000Z"
    }))
}

#[tokio::test]
async fn existing_identical_customer_counts_as_created() -> TestResult {
    let server = MockServer::start().await;
    mount_create_conflict(&server, CREATE_CUSTOMER).await;
    mount_get_once(&server, READ_CUSTOMER, stored_customer(STRIPE_CUSTOMER)).await;
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
    mount_create_conflict(&server, CREATE_CUSTOMER).await;
    mount_get_once(&server, READ_CUSTOMER, stored_customer("cus_Other1")).await;
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
    mount_create_conflict(&server, CREATE_SUBSCRIPTION).await;
    mount_get_once(
        &server,
        READ_SUBSCRIPTION,
        found(subscription_record("plan-starter", "MONTHLY")),
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
    mount_create_conflict(&server, CREATE_SUBSCRIPTION).await;
    mount_get_once(
        &server,
        READ_SUBSCRIPTION,
        found(subscription_record("plan-pro", "ANNUALLY")),
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
    mount_create_conflict(&server, CREATE_SUBSCRIPTION).await;
    let mut record = subscription_record("plan-starter", "MONTHLY");
    record["customerId"] = json!("org_other");
    if let Some(fields) = record.as_object_mut() {
        fields.remove("billingPeriod"); // absent: not compared
    }
    mount_get_once(&server, READ_SUBSCRIPTION, found(record)).await;
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
    mount_create_conflict(&server, CREATE_CUSTOMER).await;
    stigg_route("GET", READ_CUSTOMER, ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_get_once(&server, READ_CUSTOMER, stored_customer(STRIPE_CUSTOMER)).await;
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
    mount_create_conflict(&server, CREATE_CUSTOMER).await;
    mount_get_once(
        &server,
        READ_CUSTOMER,
        stigg_error(404, "CustomerNotFound", "Customer not found"),
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    assert_eq!(
        result,
        Err(StiggError::CustomerNotFound {
            operation: "read_customer",
            message: "Customer not found".into(),
        })
    );
    Ok(())
}
