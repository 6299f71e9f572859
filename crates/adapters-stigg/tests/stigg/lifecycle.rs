//! The lifecycle calls against wiremock fixtures: what they send (URLs, bodies, the caller's
//! key), how Stigg's answers are checked, which refusals count as done, and retries.

use std::sync::Arc;

use onboarding_adapters_stigg::HttpStiggGateway;
use onboarding_domain::model::OrgId;
use onboarding_domain::ports::{
    CallContext, Cancellation, StiggError, StiggLifecycle, StiggSubscription, SubscriptionPatch,
};
use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

use crate::support::*;

fn org() -> Result<OrgId, Box<dyn std::error::Error>> {
    Ok(OrgId::parse(ORG_ID)?)
}

/// Stigg's answer to a create without id: the subscription with the id it assigned.
fn assigned(record: Value) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({ "data": {
        "id": STIGG_SUBSCRIPTION, "status": "SUCCESS", "isScheduled": false,
        "entitlements": [], "subscription": record
    }}))
}

async fn only_request(server: &MockServer) -> wiremock::Request {
    let mut requests = received(server).await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.remove(0)
}

/// A change to `STIGG_SUBSCRIPTION`, sent under `MOVE_KEY`.
#[derive(Debug, Clone, Copy)]
enum Change {
    Patch(SubscriptionPatch),
    Cancel(Cancellation),
}

impl Change {
    fn route(self) -> (&'static str, &'static str) {
        match self {
            Self::Patch(_) => ("PATCH", STIGG_SUBSCRIPTION_PATH),
            Self::Cancel(_) => ("POST", CANCEL_SUBSCRIPTION),
        }
    }

    async fn send(self, gateway: &HttpStiggGateway, ctx: &CallContext) -> Result<(), StiggError> {
        match self {
            Self::Patch(patch) => {
                gateway
                    .patch_subscription(STIGG_SUBSCRIPTION, patch, MOVE_KEY, ctx)
                    .await
            }
            Self::Cancel(cancellation) => {
                gateway
                    .cancel_subscription(STIGG_SUBSCRIPTION, cancellation, MOVE_KEY, ctx)
                    .await
            }
        }
    }
}

#[tokio::test]
async fn a_creation_sends_no_id_starts_at_once_and_returns_stiggs_id() -> TestResult {
    let server = MockServer::start().await;
    mount_post(
        &server,
        CREATE_SUBSCRIPTION,
        assigned(assigned_record(json!({}))),
        1,
    )
    .await;
    // Used the way the sync will hold it: behind the port.
    let gateway: Arc<dyn StiggLifecycle> = Arc::new(HttpStiggGateway::new(config_for(&server))?);

    let created = gateway
        .create_subscription(&creation(Some(trial_end()?))?, MOVE_KEY, &ctx15()?)
        .await?;

    assert_eq!(
        created,
        StiggSubscription {
            id: STIGG_SUBSCRIPTION.into()
        }
    );
    let request = only_request(&server).await;
    assert_eq!(header(&request, "idempotency-key"), Some(MOVE_KEY));
    assert_eq!(header(&request, "x-api-key"), Some(API_KEY));
    assert_eq!(header(&request, "x-correlation-id"), Some(CORRELATION_ID));
    assert_eq!(
        request.body_json::<Value>()?,
        json!({
            "customerId": "org_8Yp2",
            "planId": "plan-pro",
            "billingPeriod": "MONTHLY",
            "billingId": "sub_9Zx8Y7",
            "paymentCollectionMethod": "NONE",
            "scheduleStrategy": "IMMEDIATE",
            "trialOverrideConfiguration": {
                "isTrial": true,
                "trialEndDate": "2030-01-15T00:00:00Z",
                "trialEndBehavior": "CONVERT_TO_PAID"
            },
            "metadata": { "orgId": "org_8Yp2", "stripeSubscriptionId": "sub_9Zx8Y7", "planCode": "plan_pro_m" }
        })
    );
    Ok(())
}

#[tokio::test]
async fn a_created_subscription_on_another_plan_is_a_conflict() -> TestResult {
    let server = MockServer::start().await;
    let other = assigned_record(json!({ "planId": "plan-starter" }));
    mount_post(&server, CREATE_SUBSCRIPTION, assigned(other), 1).await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let result = gateway
        .create_subscription(&creation(None)?, MOVE_KEY, &ctx15()?)
        .await;

    assert_eq!(
        result,
        Err(StiggError::Conflict {
            entity: "subscription",
            id: STIGG_SUBSCRIPTION.into(),
            difference: "planId is 'plan-starter', expected 'plan-pro'".into(),
        })
    );
    let request = only_request(&server).await;
    assert!(
        request
            .body_json::<Value>()?
            .get("trialOverrideConfiguration")
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn a_creation_answer_without_the_subscription_is_read_back_by_stiggs_id() -> TestResult {
    let server = MockServer::start().await;
    let bare = ResponseTemplate::new(201)
        .set_body_json(json!({ "data": { "id": STIGG_SUBSCRIPTION, "status": "SUCCESS" } }));
    mount_post(&server, CREATE_SUBSCRIPTION, bare, 1).await;
    mount_get_once(
        &server,
        STIGG_SUBSCRIPTION_PATH,
        found(assigned_record(json!({}))),
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    let created = gateway
        .create_subscription(&creation(None)?, MOVE_KEY, &ctx15()?)
        .await?;

    assert_eq!(created.id, STIGG_SUBSCRIPTION);
    Ok(())
}

#[tokio::test]
async fn a_patch_answer_that_does_not_show_the_change_is_a_conflict() -> TestResult {
    let server = MockServer::start().await;
    let still_cancelling = assigned_record(json!({ "cancellationDate": "2030-03-01T00:00:00Z" }));
    stigg_route("PATCH", STIGG_SUBSCRIPTION_PATH, found(still_cancelling))
        .mount(&server)
        .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;
    let ctx = ctx15()?;

    let kept = SubscriptionPatch::RemoveCancellation;
    let result = gateway
        .patch_subscription(STIGG_SUBSCRIPTION, kept, MOVE_KEY, &ctx)
        .await;
    let other_trial = SubscriptionPatch::TrialEnd(trial_end()? + chrono::Duration::days(1));
    let other = gateway
        .patch_subscription(STIGG_SUBSCRIPTION, other_trial, MOVE_KEY, &ctx)
        .await;

    let conflict = |difference: &str| StiggError::Conflict {
        entity: "subscription",
        id: STIGG_SUBSCRIPTION.into(),
        difference: difference.into(),
    };
    assert_eq!(
        result,
        Err(conflict(
            "cancellationDate is '2030-03-01T00:00:00Z', expected none"
        ))
    );
    assert_eq!(
        other,
        Err(conflict(
            "trialEndDate is '2030-01-15T00:00:00Z', expected '2030-01-16T00:00:00Z'"
        ))
    );
    Ok(())
}

#[tokio::test]
async fn each_change_sends_its_body_to_its_route_under_the_callers_key() -> TestResult {
    let with = |changes| assigned_record(changes);
    let canceled = with(json!({ "status": "CANCELED" }));
    let cases = [
        (
            Change::Patch(SubscriptionPatch::TrialEnd(trial_end()?)),
            json!({ "trialEndDate": "2030-01-15T00:00:00Z" }),
            with(json!({ "trialEndDate": "2030-01-15T00:00:00.000Z" })),
        ),
        (
            Change::Patch(SubscriptionPatch::RemoveCancellation),
            json!({ "cancellationDate": null }),
            with(json!({ "cancellationDate": null })),
        ),
        (
            Change::Cancel(Cancellation::Immediately {
                revoke_entitlements: true,
            }),
            json!({ "cancellationTime": "IMMEDIATE", "cancellationAction": "REVOKE_ENTITLEMENTS" }),
            canceled.clone(),
        ),
        (
            Change::Cancel(Cancellation::Immediately {
                revoke_entitlements: false,
            }),
            json!({ "cancellationTime": "IMMEDIATE", "cancellationAction": "DEFAULT" }),
            canceled,
        ),
        (
            Change::Cancel(Cancellation::OnDate(trial_end()?)),
            json!({ "cancellationTime": "SPECIFIC_DATE", "endDate": "2030-01-15T00:00:00Z" }),
            with(json!({ "cancellationDate": "2030-01-15T00:00:00.000Z" })),
        ),
    ];
    for (change, sent, shown) in cases {
        let server = MockServer::start().await;
        let (verb, route) = change.route();
        stigg_route(verb, route, found(shown))
            .expect(1)
            .mount(&server)
            .await;
        let gateway = HttpStiggGateway::new(config_for(&server))?;

        change.send(&gateway, &ctx15()?).await?;

        let request = only_request(&server).await;
        assert_eq!(header(&request, "idempotency-key"), Some(MOVE_KEY));
        assert_eq!(request.body_json::<Value>()?, sent, "{change:?}");
    }
    Ok(())
}

#[tokio::test]
async fn an_immediate_cancel_answered_still_active_is_a_conflict() -> TestResult {
    let server = MockServer::start().await;
    mount_post(
        &server,
        CANCEL_SUBSCRIPTION,
        found(assigned_record(json!({}))),
        1,
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;
    let now = Cancellation::Immediately {
        revoke_entitlements: false,
    };

    let result = gateway
        .cancel_subscription(STIGG_SUBSCRIPTION, now, MOVE_KEY, &ctx15()?)
        .await;

    assert_eq!(
        result,
        Err(StiggError::Conflict {
            entity: "subscription",
            id: STIGG_SUBSCRIPTION.into(),
            difference: "status is 'IN_TRIAL', expected 'CANCELED'".into(),
        })
    );
    Ok(())
}

#[tokio::test]
async fn already_canceled_or_expired_is_done_for_an_immediate_cancel_only() -> TestResult {
    let server = MockServer::start().await;
    let ended = stigg_error(
        400,
        "SubscriptionAlreadyCanceledOrExpired",
        "Subscription is already canceled or expired",
    );
    mount_post(&server, CANCEL_SUBSCRIPTION, ended, 2).await;
    let observer = RecordingObserver::new();
    let gateway = HttpStiggGateway::builder(config_for(&server))
        .observer(observer.clone())
        .build()?;
    let ctx = ctx15()?;
    let now = Cancellation::Immediately {
        revoke_entitlements: true,
    };

    let immediate = gateway
        .cancel_subscription(STIGG_SUBSCRIPTION, now, MOVE_KEY, &ctx)
        .await;
    let on_date = Cancellation::OnDate(trial_end()?);
    let dated = gateway
        .cancel_subscription(STIGG_SUBSCRIPTION, on_date, MOVE_KEY, &ctx)
        .await;

    assert_eq!(immediate, Ok(()));
    assert_eq!(
        dated,
        Err(StiggError::Rejected {
            operation: "cancel_subscription",
            status: 400,
            code: "SubscriptionAlreadyCanceledOrExpired".into(),
            message: "Subscription is already canceled or expired".into(),
        })
    );
    assert_eq!(
        observer.outcomes(),
        [
            ("cancel_subscription", "success"),
            ("cancel_subscription", "failed")
        ]
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_subscription_is_subscription_not_found_and_not_retried() -> TestResult {
    let changes = [
        (
            Change::Patch(SubscriptionPatch::RemoveCancellation),
            "patch_subscription",
        ),
        (
            Change::Cancel(Cancellation::Immediately {
                revoke_entitlements: false,
            }),
            "cancel_subscription",
        ),
    ];
    for (change, operation) in changes {
        let server = MockServer::start().await;
        let (verb, route) = change.route();
        let unknown = stigg_error(404, "SubscriptionNotFound", "Subscription not found");
        stigg_route(verb, route, unknown)
            .expect(1)
            .mount(&server)
            .await;
        let gateway = HttpStiggGateway::new(config_for(&server))?;

        let result = change.send(&gateway, &ctx15()?).await;

        assert_eq!(
            result,
            Err(StiggError::SubscriptionNotFound {
                operation,
                message: "Subscription not found".into(),
            })
        );
    }
    Ok(())
}

#[tokio::test]
async fn archiving_posts_an_empty_object_under_the_customers_key() -> TestResult {
    let server = MockServer::start().await;
    let archived = found(json!({
        "id": ORG_ID, "billingId": STRIPE_CUSTOMER, "archivedAt": "2026-08-20T10:00:00.000Z"
    }));
    mount_post(&server, ARCHIVE_CUSTOMER, archived, 1).await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;

    gateway
        .archive_customer(&org()?, "archive:org_8Yp2", &ctx15()?)
        .await?;

    let request = only_request(&server).await;
    assert_eq!(
        header(&request, "idempotency-key"),
        Some("archive:org_8Yp2")
    );
    assert_eq!(request.body_json::<Value>()?, json!({}));
    Ok(())
}

#[tokio::test]
async fn archiving_an_unknown_or_another_customer_fails() -> TestResult {
    let server = MockServer::start().await;
    mount_post(
        &server,
        ARCHIVE_CUSTOMER,
        stigg_error(404, "CustomerNotFound", "Customer not found"),
        1,
    )
    .await;
    mount_post(
        &server,
        "/api/v1/customers/org_other/archive",
        found(json!({ "id": "org_someone" })),
        1,
    )
    .await;
    let gateway = HttpStiggGateway::new(config_for(&server))?;
    let ctx = ctx15()?;

    let unknown = gateway
        .archive_customer(&org()?, "archive:org_8Yp2", &ctx)
        .await;
    let other = gateway
        .archive_customer(&OrgId::parse("org_other")?, "archive:org_other", &ctx)
        .await;

    assert_eq!(
        unknown,
        Err(StiggError::CustomerNotFound {
            operation: "archive_customer",
            message: "Customer not found".into(),
        })
    );
    assert_eq!(
        other,
        Err(StiggError::Conflict {
            entity: "customer",
            id: "org_other".into(),
            difference: "id is 'org_someone', expected 'org_other'".into(),
        })
    );
    Ok(())
}

#[tokio::test]
async fn retries_send_the_callers_key_and_body_again() -> TestResult {
    let server = MockServer::start().await;
    mount_post_first(&server, CANCEL_SUBSCRIPTION, ResponseTemplate::new(503), 2).await;
    let canceled = assigned_record(json!({ "status": "CANCELED" }));
    mount_post(&server, CANCEL_SUBSCRIPTION, found(canceled), 1).await;
    let sleeper = RecordingSleeper::instant();
    let observer = RecordingObserver::new();
    let gateway = builder_with(config_for(&server), sleeper.clone())
        .observer(observer.clone())
        .build()?;
    let now = Cancellation::Immediately {
        revoke_entitlements: true,
    };

    gateway
        .cancel_subscription(STIGG_SUBSCRIPTION, now, MOVE_KEY, &ctx15()?)
        .await?;

    let requests = received(&server).await;
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(header(request, "idempotency-key"), Some(MOVE_KEY));
        assert_eq!(request.body, requests[0].body);
    }
    assert_eq!(sleeper.sleeps().len(), 2);
    assert_eq!(
        observer.outcomes(),
        [
            ("cancel_subscription", "retried"),
            ("cancel_subscription", "retried"),
            ("cancel_subscription", "success"),
        ]
    );
    Ok(())
}
