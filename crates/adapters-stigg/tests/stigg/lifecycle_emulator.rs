//! The lifecycle calls against the bundled emulator: the adapter and the emulator agree on
//! Stigg's behaviour after provisioning.

use chrono::Duration;
use onboarding_adapters_stigg::HttpStiggGateway;
use onboarding_domain::ports::{
    Cancellation, StiggError, StiggGateway, StiggLifecycle, SubscriptionPatch,
};
use stigg_emulator::{EmulatorConfig, RateLimit, RetryAfterHint, SubscriptionStatus};

use crate::emulator::{start, start_with};
use crate::support::*;

#[tokio::test]
async fn a_subscription_followed_through_its_lifecycle() -> TestResult {
    let running = start().await?;
    let emulator = running.emulator();
    let gateway = HttpStiggGateway::new(config(&running.base_url()))?;
    let ctx = ctx15()?;
    gateway.provision_customer(&customer()?, &ctx).await?;
    gateway
        .provision_subscription(&trialing_subscription()?, &ctx)
        .await?;
    let view = |id: &str| emulator.subscription(id).ok_or("no such subscription");

    let later = trial_end()? + Duration::days(7);
    gateway
        .patch_subscription(
            STRIPE_SUBSCRIPTION,
            SubscriptionPatch::TrialEnd(later),
            "k1",
            &ctx,
        )
        .await?;
    assert_eq!(view(STRIPE_SUBSCRIPTION)?.trial_end, Some(later));

    let on_date = Cancellation::OnDate(later);
    gateway
        .cancel_subscription(STRIPE_SUBSCRIPTION, on_date, "k2", &ctx)
        .await?;
    assert_eq!(view(STRIPE_SUBSCRIPTION)?.cancellation_date, Some(later));
    let kept = SubscriptionPatch::RemoveCancellation;
    gateway
        .patch_subscription(STRIPE_SUBSCRIPTION, kept, "k3", &ctx)
        .await?;
    assert_eq!(view(STRIPE_SUBSCRIPTION)?.cancellation_date, None);

    // A plan change: a new subscription replaces the provisioned one.
    let created = gateway
        .create_subscription(&creation(None)?, "k4", &ctx)
        .await?;
    assert_ne!(created.id, STRIPE_SUBSCRIPTION);
    assert_eq!(
        view(STRIPE_SUBSCRIPTION)?.status,
        SubscriptionStatus::Canceled
    );
    let active = emulator.active_subscription(ORG_ID).ok_or("none active")?;
    assert_eq!(
        (active.id.as_str(), active.plan_id.as_str(), active.status),
        (created.id.as_str(), "plan-pro", SubscriptionStatus::Active)
    );

    // Canceled now, then again under another key: Stigg's refusal counts as done.
    let now = Cancellation::Immediately {
        revoke_entitlements: true,
    };
    gateway
        .cancel_subscription(&created.id, now, "k5", &ctx)
        .await?;
    assert_eq!(view(&created.id)?.status, SubscriptionStatus::Canceled);
    gateway
        .cancel_subscription(&created.id, now, "k6", &ctx)
        .await?;
    let dated = gateway
        .cancel_subscription(&created.id, on_date, "k7", &ctx)
        .await;
    assert!(
        matches!(&dated, Err(StiggError::Rejected { code, .. }) if code == "SubscriptionAlreadyCanceledOrExpired"),
        "{dated:?}"
    );

    let org = customer()?.customer_id;
    gateway
        .archive_customer(&org, "archive:org_8Yp2", &ctx)
        .await?;
    assert_eq!(emulator.customer_archived(ORG_ID), Some(true));
    gateway
        .archive_customer(&org, "archive:org_8Yp2:again", &ctx)
        .await?;

    let statuses: Vec<_> = emulator
        .requests()
        .into_iter()
        .map(|r| (r.method, r.status))
        .collect();
    let expected: Vec<(String, u16)> = [
        ("POST", 201),
        ("POST", 201),
        ("PATCH", 200),
        ("POST", 200),
        ("PATCH", 200),
        ("POST", 201),
        ("POST", 200),
        ("POST", 400),
        ("POST", 400),
        ("POST", 200),
        ("POST", 200),
    ]
    .into_iter()
    .map(|(method, status)| (method.to_owned(), status))
    .collect();
    assert_eq!(statuses, expected, "one request per call, none retried");
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn unknown_ids_are_not_found() -> TestResult {
    let running = start().await?;
    let gateway = HttpStiggGateway::new(config(&running.base_url()))?;
    let ctx = ctx15()?;
    let now = Cancellation::Immediately {
        revoke_entitlements: false,
    };

    let patched = gateway
        .patch_subscription(
            "sub_gone",
            SubscriptionPatch::RemoveCancellation,
            "k1",
            &ctx,
        )
        .await;
    let canceled = gateway
        .cancel_subscription("sub_gone", now, "k2", &ctx)
        .await;
    let archived = gateway
        .archive_customer(&customer()?.customer_id, "k3", &ctx)
        .await;

    assert!(
        matches!(
            patched,
            Err(StiggError::SubscriptionNotFound {
                operation: "patch_subscription",
                ..
            })
        ),
        "{patched:?}"
    );
    assert!(
        matches!(
            canceled,
            Err(StiggError::SubscriptionNotFound {
                operation: "cancel_subscription",
                ..
            })
        ),
        "{canceled:?}"
    );
    assert!(
        matches!(
            archived,
            Err(StiggError::CustomerNotFound {
                operation: "archive_customer",
                ..
            })
        ),
        "{archived:?}"
    );
    running.stop().await;
    Ok(())
}

/// With the client's entity budget set to the emulator's, the client holds back the call the
/// emulator would refuse, and other subscriptions go on.
#[tokio::test]
async fn the_client_keeps_to_stiggs_entity_limit() -> TestResult {
    let running = start_with(EmulatorConfig {
        api_key: API_KEY.into(),
        rate_limit: Some(RateLimit {
            per_operation_per_minute: 0,
            per_customer_per_minute: 1,
            retry_after: RetryAfterHint::Seconds,
        }),
        ..EmulatorConfig::default()
    })
    .await?;
    let emulator = running.emulator();
    let mut budgeted = config(&running.base_url());
    budgeted.mutations_per_entity_per_minute = 1;
    let gateway = gateway_with(budgeted, RecordingSleeper::instant())?;
    let ctx = ctx15()?;
    gateway.provision_customer(&customer()?, &ctx).await?;
    let mut other = customer()?;
    other.customer_id = "org_other".parse()?;
    gateway.provision_customer(&other, &ctx).await?;

    let held_back = gateway
        .provision_subscription(&trialing_subscription()?, &ctx)
        .await;

    assert_eq!(held_back, Err(StiggError::RateLimited));
    let statuses: Vec<_> = emulator.requests().into_iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 201], "nothing refused by the emulator");
    // Without the client's entity budget, the emulator refuses that call.
    let unlimited = gateway_with(config(&running.base_url()), RecordingSleeper::instant())?;
    let refused = unlimited
        .provision_subscription(&trialing_subscription()?, &ctx)
        .await;
    assert_eq!(refused, Err(unavailable(1, "HTTP 429")));
    running.stop().await;
    Ok(())
}
