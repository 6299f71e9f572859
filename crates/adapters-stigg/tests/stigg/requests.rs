//! What the adapter sends: headers, URLs and JSON bodies of both creates, and how it reads
//! Stigg's success answers.

use std::sync::Arc;

use onboarding_adapters_stigg::HttpStiggGateway;
use onboarding_domain::model::{BillingPeriod, OrgId};
use onboarding_domain::ports::{
    StiggCustomer, StiggError, StiggGateway, StiggSubscription, TrialConfiguration,
};
use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

use crate::support::*;

#[tokio::test]
async fn customer_create_sends_the_contract_headers_and_body() -> TestResult {
    let server = MockServer::start().await;
    mount_post(&server, CREATE_CUSTOMER, customer_created(), 1).await;
    // Used the way the service holds it: behind the port.
    let gateway: Arc<dyn StiggGateway> = Arc::new(HttpStiggGateway::new(config_for(&server))?);

    let created = gateway.provision_customer(&customer()?, &ctx15()?).await?;

    assert_eq!(created, StiggCustomer { id: ORG_ID.into() });
    let requests = received(&server).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(header(request, "x-api-key"), Some(API_KEY));
    assert_eq!(
        header(request, "idempotency-key"),
        Some("customer:org_8Yp2")
    );
    assert_eq!(header(request, "x-correlation-id"), Some(CORRELATION_ID));
    assert_eq!(header(request, "user-agent"), Some(USER_AGENT));
    assert_eq!(header(request, "content-type"), Some("application/json"));
    assert_eq!(header(request, "accept"), Some("application/json"));
    assert_eq!(
        request.body_json::<Value>()?,
        json!({
            "id": "org_8Yp2",
            "name": "Acme Inc",
            "email": "owner@acme.test",
            "billingId": "cus_Q1w2E3",
            "metadata": { "orgId": "org_8Yp2", "stripeCustomerId": "cus_Q1w2E3", "tenantId": "tenant-1" }
        })
    );
    Ok(())
}

#[tokio::test]
async fn customer_without_email_or_tenant_leaves_them_out() -> TestResult {
    let server = MockServer::start().await;
    mount_post(&server, CREATE_CUSTOMER, customer_created(), 1).await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;
    let mut bare = customer()?;
    bare.email = None;
    bare.tenant_id = None;

    gateway.provision_customer(&bare, &ctx15()?).await?;

    let requests = received(&server).await;
    assert_eq!(
        requests[0].body_json::<Value>()?,
        json!({
            "id": "org_8Yp2",
            "name": "Acme Inc",
            "billingId": "cus_Q1w2E3",
            "metadata": { "orgId": "org_8Yp2", "stripeCustomerId": "cus_Q1w2E3" }
        })
    );
    Ok(())
}

#[tokio::test]
async fn trialing_subscription_create_sends_the_trial_override() -> TestResult {
    let server = MockServer::start().await;
    mount_post(
        &server,
        CREATE_SUBSCRIPTION,
        subscription_provisioned("SUCCESS"),
        1,
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let created = gateway
        .provision_subscription(&trialing_subscription()?, &ctx15()?)
        .await?;

    assert_eq!(
        created,
        StiggSubscription {
            id: STRIPE_SUBSCRIPTION.into()
        }
    );
    let requests = received(&server).await;
    let request = &requests[0];
    assert_eq!(header(request, "x-api-key"), Some(API_KEY));
    assert_eq!(
        header(request, "idempotency-key"),
        Some("subscription:sub_9Zx8Y7")
    );
    assert_eq!(header(request, "x-correlation-id"), Some(CORRELATION_ID));
    assert_eq!(header(request, "user-agent"), Some(USER_AGENT));
    assert_eq!(header(request, "content-type"), Some("application/json"));
    assert_eq!(
        request.body_json::<Value>()?,
        json!({
            "id": "sub_9Zx8Y7",
            "customerId": "org_8Yp2",
            "planId": "plan-starter",
            "billingPeriod": "MONTHLY",
            "billingId": "sub_9Zx8Y7",
            "paymentCollectionMethod": "NONE",
            "trialOverrideConfiguration": {
                "isTrial": true,
                "trialEndDate": "2030-01-15T00:00:00Z",
                "trialEndBehavior": "CONVERT_TO_PAID"
            },
            "metadata": { "orgId": "org_8Yp2", "stripeSubscriptionId": "sub_9Zx8Y7", "planCode": "plan_starter_m" }
        })
    );
    Ok(())
}

#[tokio::test]
async fn subscription_without_trial_has_no_trial_override() -> TestResult {
    let server = MockServer::start().await;
    let answer = ResponseTemplate::new(201).set_body_json(json!({ "data": {
        "id": STRIPE_SUBSCRIPTION, "status": "SUCCESS",
        "subscription": subscription_record("plan-starter", "ANNUALLY")
    }}));
    mount_post(&server, CREATE_SUBSCRIPTION, answer, 1).await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;
    let mut annual = subscription(None)?;
    annual.billing_period = BillingPeriod::Annually;

    gateway.provision_subscription(&annual, &ctx15()?).await?;

    let requests = received(&server).await;
    assert_eq!(
        requests[0].body_json::<Value>()?,
        json!({
            "id": "sub_9Zx8Y7",
            "customerId": "org_8Yp2",
            "planId": "plan-starter",
            "billingPeriod": "ANNUALLY",
            "billingId": "sub_9Zx8Y7",
            "paymentCollectionMethod": "NONE",
            "metadata": { "orgId": "org_8Yp2", "stripeSubscriptionId": "sub_9Zx8Y7", "planCode": "plan_starter_m" }
        })
    );
    Ok(())
}

#[tokio::test]
async fn trial_without_end_date_sends_no_end_date() -> TestResult {
    let server = MockServer::start().await;
    mount_post(
        &server,
        CREATE_SUBSCRIPTION,
        subscription_provisioned("SUCCESS"),
        1,
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;
    let open_trial = subscription(Some(TrialConfiguration { ends_at: None }))?;

    gateway
        .provision_subscription(&open_trial, &ctx15()?)
        .await?;

    let body = received(&server).await[0].body_json::<Value>()?;
    assert_eq!(
        body["trialOverrideConfiguration"],
        json!({ "isTrial": true, "trialEndBehavior": "CONVERT_TO_PAID" })
    );
    Ok(())
}

#[tokio::test]
async fn base_url_path_prefix_and_trailing_slash_are_kept() -> TestResult {
    let server = MockServer::start().await;
    mount_post(&server, "/stigg/api/v1/customers", customer_created(), 1).await;
    let gateway = HttpStiggGateway::new(config(&format!("{}/stigg/", server.uri())))?;

    gateway.provision_customer(&customer()?, &ctx15()?).await?;
    Ok(())
}

#[tokio::test]
async fn a_2xx_without_the_customer_is_checked_by_reading_it_back() -> TestResult {
    let server = MockServer::start().await;
    mount_post(&server, CREATE_CUSTOMER, ResponseTemplate::new(204), 1).await;
    mount_get_once(
        &server,
        "/api/v1/customers/org.other-1",
        found(json!({ "id": "org.other-1", "billingId": STRIPE_CUSTOMER })),
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;
    let mut other = customer()?;
    other.customer_id = OrgId::parse("org.other-1")?;

    let created = gateway.provision_customer(&other, &ctx15()?).await?;

    assert_eq!(created.id, "org.other-1");
    assert_eq!(received(&server).await.len(), 2);
    Ok(())
}

/// Stigg replays the first answer to a repeated idempotency key for 24 h: after the
/// organization's Stripe customer changed, a 2xx may describe the old one.
#[tokio::test]
async fn a_2xx_that_shows_another_billing_id_is_a_conflict_not_a_success() -> TestResult {
    let server = MockServer::start().await;
    mount_post(&server, CREATE_CUSTOMER, customer_created(), 1).await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;
    let mut moved = customer()?;
    moved.billing_id = "cus_New9".parse()?;

    let result = gateway.provision_customer(&moved, &ctx15()?).await;

    match result {
        Err(StiggError::Conflict {
            entity: "customer",
            difference,
            ..
        }) => assert!(difference.contains("cus_New9"), "{difference}"),
        other => panic!("unexpected {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_2xx_that_shows_another_plan_is_a_conflict_not_a_success() -> TestResult {
    let server = MockServer::start().await;
    let answer = ResponseTemplate::new(201).set_body_json(json!({ "data": {
        "id": STRIPE_SUBSCRIPTION, "status": "SUCCESS",
        "subscription": subscription_record("plan-pro", "MONTHLY")
    }}));
    mount_post(&server, CREATE_SUBSCRIPTION, answer, 1).await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let result = gateway
        .provision_subscription(&subscription(None)?, &ctx15()?)
        .await;

    match result {
        Err(StiggError::Conflict {
            entity: "subscription",
            difference,
            ..
        }) => assert!(difference.contains("planId"), "{difference}"),
        other => panic!("unexpected {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn unreadable_success_answers_are_invalid_responses() -> TestResult {
    let server = MockServer::start().await;
    mount_post(
        &server,
        CREATE_SUBSCRIPTION,
        ResponseTemplate::new(201).set_body_string("<html>ok</html>"),
        1,
    )
    .await;
    mount_post(
        &server,
        CREATE_CUSTOMER,
        ResponseTemplate::new(200).set_body_string("not json"),
        1,
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let subscription = gateway
        .provision_subscription(&trialing_subscription()?, &ctx15()?)
        .await;
    let customer = gateway.provision_customer(&customer()?, &ctx15()?).await;

    assert!(
        matches!(
            subscription,
            Err(StiggError::InvalidResponse {
                operation: "provision_subscription",
                ..
            })
        ),
        "{subscription:?}"
    );
    assert!(
        matches!(
            customer,
            Err(StiggError::InvalidResponse {
                operation: "provision_customer",
                ..
            })
        ),
        "{customer:?}"
    );
    Ok(())
}

#[tokio::test]
async fn unknown_subscription_status_is_an_invalid_response() -> TestResult {
    let server = MockServer::start().await;
    mount_post(
        &server,
        CREATE_SUBSCRIPTION,
        subscription_provisioned("PENDING"),
        1,
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let result = gateway
        .provision_subscription(&trialing_subscription()?, &ctx15()?)
        .await;

    assert_eq!(
        result,
        Err(StiggError::InvalidResponse {
            operation: "provision_subscription",
            detail: "unknown status 'PENDING'".into()
        })
    );
    Ok(())
}

#[tokio::test]
async fn payment_required_is_a_failure() -> TestResult {
    let server = MockServer::start().await;
    let payment_required = ResponseTemplate::new(201).set_body_json(json!({ "data": {
        "id": STRIPE_SUBSCRIPTION, "status": "PAYMENT_REQUIRED", "subscription": null,
        "checkoutUrl": "https://checkout.stigg.test/abc", "checkoutBillingId": "cs_1"
    }}));
    mount_post(&server, CREATE_SUBSCRIPTION, payment_required, 1).await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let result = gateway
        .provision_subscription(&trialing_subscription()?, &ctx15()?)
        .await;

    assert_eq!(
        result,
        Err(StiggError::PaymentRequired(STRIPE_SUBSCRIPTION.into()))
    );
    Ok(())
}

/// An answer is read up to 1 MiB: a longer one is cut, no longer reads as JSON, and is
/// reported as an unexpected answer, never held in memory whole.
#[tokio::test]
async fn answers_over_a_mebibyte_are_cut_and_refused() -> TestResult {
    let server = MockServer::start().await;
    let huge = format!(
        r#"{{"data":{{"id":"org_8Yp2","billingId":"cus_Q1w2E3","note":"{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    mount_post(
        &server,
        CREATE_CUSTOMER,
        ResponseTemplate::new(201).set_body_raw(huge, "application/json"),
        1,
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    match result {
        Err(StiggError::InvalidResponse { detail, .. }) => {
            assert!(detail.contains("not the expected JSON"), "{detail}")
        }
        other => panic!("unexpected {other:?}"),
    }
    Ok(())
}
