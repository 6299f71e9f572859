//! The client-side rate limits: shared by every clone of a gateway, one bucket per operation
//! and one per customer or subscription, fail fast when the next token would come after the
//! deadline.

use std::time::{Duration, Instant};

use onboarding_adapters_stigg::{BudgetError, Choice, HttpStiggGateway, SharedBudget, Take};
use onboarding_domain::ports::{
    Cancellation, StiggError, StiggGateway, StiggLifecycle, SubscriptionPatch,
};
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

use crate::support::*;

#[tokio::test]
async fn refuses_without_calling_when_the_next_token_is_past_the_deadline() -> TestResult {
    let server = MockServer::start().await;
    mount_post(&server, CREATE_CUSTOMER, customer_created(), 1).await;
    let mut config = config_for(&server);
    config.calls_per_minute = 1;
    let sleeper = RecordingSleeper::instant();
    let observer = RecordingObserver::new();
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
    mount_post(&server, CREATE_CUSTOMER, customer_created(), 4).await;
    let mut config = config_for(&server);
    config.calls_per_minute = 123; // three banked, then one every 500 ms
    config.interactive_share_percent = 0; // one bucket: none kept for API requests
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
    mount_post(&server, CREATE_CUSTOMER, duplicate(), 1).await;
    mount_get_once(
        &server,
        READ_CUSTOMER,
        found(json!({ "id": ORG_ID, "billingId": STRIPE_CUSTOMER })),
    )
    .await;
    mount_post(
        &server,
        CREATE_SUBSCRIPTION,
        subscription_provisioned("SUCCESS"),
        1,
    )
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
    mount_post(&server, CREATE_CUSTOMER, ResponseTemplate::new(503), 1).await;
    let mut config = config_for(&server);
    config.calls_per_minute = 1;
    let gateway = gateway_with(config, RecordingSleeper::instant())?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    assert_eq!(result, Err(unavailable(1, "HTTP 503")));
    Ok(())
}

#[tokio::test]
async fn one_subscription_gets_one_budget_across_patch_and_cancel() -> TestResult {
    let server = MockServer::start().await;
    let shown = |changes| found(assigned_record(changes));
    stigg_route(
        "PATCH",
        STIGG_SUBSCRIPTION_PATH,
        shown(json!({ "cancellationDate": null })),
    )
    .expect(1)
    .mount(&server)
    .await;
    mount_post(
        &server,
        "/api/v1/subscriptions/subscription-other/cancel",
        shown(json!({ "id": "subscription-other", "status": "CANCELED" })),
        1,
    )
    .await;
    mount_post(&server, CANCEL_SUBSCRIPTION, shown(json!({})), 0).await;
    let mut config = config_for(&server);
    config.mutations_per_entity_per_minute = 1;
    let observer = RecordingObserver::new();
    let gateway = HttpStiggGateway::builder(config)
        .sleeper(RecordingSleeper::instant())
        .observer(observer.clone())
        .build()?;
    let ctx = ctx15()?;
    let now = Cancellation::Immediately {
        revoke_entitlements: false,
    };
    let patch = SubscriptionPatch::RemoveCancellation;
    gateway
        .patch_subscription(STIGG_SUBSCRIPTION, patch, MOVE_KEY, &ctx)
        .await?;

    let same = gateway
        .cancel_subscription(STIGG_SUBSCRIPTION, now, MOVE_KEY, &ctx)
        .await;
    let other = gateway
        .cancel_subscription("subscription-other", now, MOVE_KEY, &ctx)
        .await;

    assert_eq!(same, Err(StiggError::RateLimited));
    assert_eq!(other, Ok(()));
    assert_eq!(
        observer.outcomes(),
        [
            ("patch_subscription", "success"),
            ("cancel_subscription", "rate_limited"),
            ("cancel_subscription", "success"),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_customers_budget_covers_its_creates_and_its_archive() -> TestResult {
    let server = MockServer::start().await;
    mount_post(&server, CREATE_CUSTOMER, customer_created(), 1).await;
    mount_post(&server, ARCHIVE_CUSTOMER, found(json!({ "id": ORG_ID })), 0).await;
    mount_post(
        &server,
        CREATE_SUBSCRIPTION,
        subscription_provisioned("SUCCESS"),
        0,
    )
    .await;
    let mut config = config_for(&server);
    config.mutations_per_entity_per_minute = 1;
    let gateway = gateway_with(config, RecordingSleeper::instant())?;
    let ctx = ctx15()?;
    gateway.provision_customer(&customer()?, &ctx).await?;

    let subscription = gateway
        .provision_subscription(&trialing_subscription()?, &ctx)
        .await;
    let archive = gateway
        .archive_customer(&customer()?.customer_id, "archive:org_8Yp2", &ctx)
        .await;

    assert_eq!(subscription, Err(StiggError::RateLimited));
    assert_eq!(archive, Err(StiggError::RateLimited));
    Ok(())
}

#[tokio::test]
async fn an_entity_waits_for_its_next_slot_within_the_deadline() -> TestResult {
    let server = MockServer::start().await;
    let canceled = found(assigned_record(json!({ "status": "CANCELED" })));
    mount_post(&server, CANCEL_SUBSCRIPTION, canceled, 4).await;
    let mut config = config_for(&server);
    config.mutations_per_entity_per_minute = 123; // three banked, then one every 500 ms
    let sleeper = RecordingSleeper::instant();
    let gateway = gateway_with(config, sleeper.clone())?;
    let now = Cancellation::Immediately {
        revoke_entitlements: false,
    };

    for _ in 0..4 {
        gateway
            .cancel_subscription(STIGG_SUBSCRIPTION, now, MOVE_KEY, &ctx15()?)
            .await?;
    }

    let sleeps = sleeper.sleeps();
    assert_eq!(sleeps.len(), 1, "{sleeps:?}");
    assert!(
        sleeps[0] > Duration::from_millis(400) && sleeps[0] <= Duration::from_millis(500),
        "{sleeps:?}"
    );
    Ok(())
}

/// A shared store that books every take at once and remembers what it was offered, or
/// fails every take.
#[derive(Default)]
struct RecordingBudget {
    offered: std::sync::Mutex<Vec<Vec<Choice>>>,
    down: bool,
}

#[async_trait::async_trait]
impl SharedBudget for RecordingBudget {
    async fn take(&self, choices: &[Choice]) -> Result<Take, BudgetError> {
        self.offered.lock().unwrap().push(choices.to_vec());
        if self.down {
            return Err(BudgetError("connection refused".into()));
        }
        Ok(Take {
            chosen: Some(0),
            wait: Duration::ZERO,
            ahead: Vec::new(),
        })
    }
}

/// Each offered choice as its buckets' keys and whether it may wait.
fn shapes(choices: &[Choice]) -> Vec<(Vec<&str>, bool)> {
    choices
        .iter()
        .map(|c| {
            let keys = c.draws.iter().map(|d| d.key.as_str()).collect();
            (keys, !c.max_wait.is_zero())
        })
        .collect()
}

#[tokio::test]
async fn api_requests_offer_the_reserve_first_and_a_backlog_borrows_it_only_at_once() -> TestResult
{
    let server = MockServer::start().await;
    mount_post(&server, CREATE_CUSTOMER, customer_created(), 2).await;
    let budget = std::sync::Arc::new(RecordingBudget::default());
    let gateway = HttpStiggGateway::builder(config_for(&server))
        .shared_budget(budget.clone())
        .build()?;

    gateway.provision_customer(&customer()?, &ctx15()?).await?;
    gateway
        .for_background()
        .provision_customer(&customer()?, &ctx15()?)
        .await?;

    let offered = budget.offered.lock().unwrap().clone();
    let entity = &format!("customer:{ORG_ID}");
    let entity = entity.as_str();
    assert_eq!(
        shapes(&offered[0]),
        [
            (vec!["op:provision_customer:api", entity], true),
            (vec!["op:provision_customer", entity], true),
        ]
    );
    assert_eq!(
        shapes(&offered[1]),
        [
            (vec!["op:provision_customer", entity], true),
            (vec!["op:provision_customer:api", entity], false),
        ]
    );
    // The borrower leaves one call banked: it sees a smaller tolerance.
    let (asked, borrowed) = (&offered[0][0].draws[0], &offered[1][1].draws[0]);
    assert_eq!(asked.period, borrowed.period);
    assert_eq!(asked.tolerance - borrowed.tolerance, asked.period);
    Ok(())
}

#[tokio::test]
async fn a_shared_budget_that_fails_sends_nothing_and_says_so() -> TestResult {
    let server = MockServer::start().await;
    mount_post(&server, CREATE_CUSTOMER, customer_created(), 0).await;
    let budget = std::sync::Arc::new(RecordingBudget {
        down: true,
        ..RecordingBudget::default()
    });
    let gateway = HttpStiggGateway::builder(config_for(&server))
        .shared_budget(budget)
        .build()?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    assert_eq!(
        result,
        Err(StiggError::Unavailable {
            attempts: 0,
            cause: "the shared Stigg budget is unavailable: connection refused".into()
        })
    );
    assert!(received(&server).await.is_empty());
    Ok(())
}
