//! Reads of what the emulator holds: the domain values match Stripe's objects.

use chrono::{DateTime, Utc};
use onboarding_adapters_stripe::{STRIPE_API_VERSION, StripeClient};
use onboarding_domain::model::{
    StripeCustomer, StripePrice, StripePriceId, StripeSubscription, StripeSubscriptionItem,
    SubscriptionStatus,
};
use onboarding_domain::ports::{StripeError, StripeReader};
use stripe_emulator::{Interval, NewCustomer, NewSubscription, PriceSpec, SubscriptionChange};

use crate::support::{RecordingSleeper, TestResult, client_with, config, ctx15, cus, start, sub};

const DAY: i64 = 86_400;

fn at(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

fn customer(id: &str) -> NewCustomer {
    NewCustomer {
        id: Some(id.to_owned()),
        email: Some("billing@example.org".into()),
        ..NewCustomer::default()
    }
}

#[tokio::test]
async fn a_trialing_subscription_reads_as_the_domain_value() -> TestResult {
    let running = start().await?;
    let emulator = running.emulator();
    emulator.create_customer(customer("cus_Reader1"))?;
    let now = Utc::now().timestamp();
    let mut new = NewSubscription::new(
        "cus_Reader1",
        PriceSpec {
            id: "price_Pro".into(),
            lookup_key: Some("pro_monthly".into()),
            interval: Interval::Month,
        },
    );
    new.id = Some("sub_Reader1".into());
    new.trial_end = Some(now + 14 * DAY);
    emulator.create_subscription(new)?;
    let cancel_at = now + 60 * DAY;
    emulator.change_subscription(
        "sub_Reader1",
        SubscriptionChange::CancelAt {
            cancel_at: Some(cancel_at),
        },
    )?;
    let shown = emulator.subscription("sub_Reader1").expect("created");
    let item_period_end = shown["items"]["data"][0]["current_period_end"].as_i64();
    let client = StripeClient::new(config(&running.base_url()))?;

    let read = client.subscription(&sub("sub_Reader1"), &ctx15()).await?;

    let expected = StripeSubscription {
        id: sub("sub_Reader1"),
        customer: cus("cus_Reader1"),
        status: SubscriptionStatus::Trialing,
        trial_end: at(now + 14 * DAY),
        cancel_at: at(cancel_at),
        cancel_at_period_end: false,
        // Version 2025-03-31 shows the period on the item only.
        current_period_end: None,
        first_item: StripeSubscriptionItem {
            price: StripePrice {
                id: StripePriceId::parse("price_Pro")?,
                lookup_key: Some("pro_monthly".into()),
            },
            current_period_end: at(item_period_end.expect("the item's period")),
        },
    };
    assert_eq!(read, Some(expected));
    let requests = emulator.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/v1/subscriptions/sub_Reader1");
    assert!(requests[0].api_key_valid);
    assert_eq!(
        requests[0].stripe_version.as_deref(),
        Some(STRIPE_API_VERSION)
    );
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn changes_are_read_as_they_are_now() -> TestResult {
    let running = start().await?;
    let emulator = running.emulator();
    emulator.create_customer(customer("cus_Reader2"))?;
    let mut new = NewSubscription::new(
        "cus_Reader2",
        PriceSpec {
            id: "price_Basic".into(),
            lookup_key: None,
            interval: Interval::Year,
        },
    );
    new.id = Some("sub_Reader2".into());
    emulator.create_subscription(new)?;
    let client = StripeClient::new(config(&running.base_url()))?;
    let id = sub("sub_Reader2");

    let active = client.subscription(&id, &ctx15()).await?.expect("exists");
    assert_eq!(active.status, SubscriptionStatus::Active);
    assert_eq!(active.first_item.price.lookup_key, None);
    assert!(!active.cancel_at_period_end);

    emulator.change_subscription(
        "sub_Reader2",
        SubscriptionChange::CancelAtPeriodEnd {
            cancel_at_period_end: true,
        },
    )?;
    emulator.change_subscription("sub_Reader2", SubscriptionChange::Cancel)?;
    let canceled = client
        .subscription(&id, &ctx15())
        .await?
        .expect("still readable");
    assert_eq!(canceled.status, SubscriptionStatus::Canceled);

    // Deleted from the emulator: Stripe's 404 resource_missing.
    emulator.delete_subscription("sub_Reader2")?;
    assert_eq!(client.subscription(&id, &ctx15()).await?, None);
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn customers_live_deleted_and_unknown() -> TestResult {
    let running = start().await?;
    let emulator = running.emulator();
    emulator.create_customer(customer("cus_Live"))?;
    emulator.create_customer(customer("cus_Gone"))?;
    emulator.delete_customer("cus_Gone")?;
    let client = StripeClient::new(config(&running.base_url()))?;

    assert_eq!(
        client.customer(&cus("cus_Live"), &ctx15()).await?,
        Some(StripeCustomer {
            id: cus("cus_Live"),
            deleted: false
        })
    );
    assert_eq!(
        client.customer(&cus("cus_Gone"), &ctx15()).await?,
        Some(StripeCustomer {
            id: cus("cus_Gone"),
            deleted: true
        })
    );
    assert_eq!(client.customer(&cus("cus_Never"), &ctx15()).await?, None);
    assert_eq!(
        client.subscription(&sub("sub_Never"), &ctx15()).await?,
        None
    );
    let paths: Vec<_> = emulator.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/customers/cus_Live",
            "/v1/customers/cus_Gone",
            "/v1/customers/cus_Never",
            "/v1/subscriptions/sub_Never"
        ]
    );
    running.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_never_shown() -> TestResult {
    let running = start().await?;
    running
        .emulator()
        .create_customer(customer("cus_Reader3"))?;
    let mut wrong = config(&running.base_url());
    wrong.api_key = "sk_test_NotTheEmulatorsKey".into();
    let sleeper = RecordingSleeper::instant();
    let client = client_with(wrong, sleeper.clone());

    let error = client
        .customer(&cus("cus_Reader3"), &ctx15())
        .await
        .expect_err("refused");

    assert_eq!(error, StripeError::Unauthorized { status: 401 });
    assert!(!error.is_transient());
    assert!(!error.to_string().contains("NotTheEmulatorsKey"), "{error}");
    assert!(sleeper.sleeps().is_empty(), "a 401 is not retried");
    assert_eq!(running.emulator().requests().len(), 1);
    running.stop().await;
    Ok(())
}
