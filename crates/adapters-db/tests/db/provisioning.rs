//! ProvisioningStore: state, attempts, and what recording a result or a failure does.

use anyhow::Context;
use diesel::sql_types::{Integer, Nullable, Text};
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_domain::model::{ProvisionedCustomer, ProvisionedSubscription, ProvisioningState};
use onboarding_domain::ports::ProvisioningStore;

use crate::support::{
    CONTRACT_SEED, TestResult, cus_id, on_both_backends, org_id, query, sub_id, utc,
};

on_both_backends!(
    load_is_pending_then_done,
    record_customer_replaces_and_forget_removes,
    attempts_are_counted_until_the_subscription_is_provisioned,
    record_failure_keeps_the_start_of_the_reason,
    record_subscription_clears_the_failure,
    fifty_concurrent_first_attempts_make_one_record,
);

fn customer() -> anyhow::Result<ProvisionedCustomer> {
    Ok(ProvisionedCustomer {
        org_id: org_id("org_1"),
        stigg_customer_id: "org_1".into(),
        billing_id: cus_id("cus_A1"),
        provisioned_at: utc(2026, 11, 24, 10, 0, 0)?,
    })
}

fn done() -> anyhow::Result<ProvisionedSubscription> {
    Ok(ProvisionedSubscription {
        org_id: org_id("org_1"),
        stripe_subscription_id: sub_id("sub_A1"),
        stigg_customer_id: "org_1".into(),
        stigg_subscription_id: "sub_A1".into(),
        provisioned_at: utc(2026, 11, 24, 10, 0, 5)?,
    })
}

#[derive(Debug, diesel::QueryableByName)]
struct AttemptColumns {
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
}

async fn attempt_columns(db: &TestDatabase) -> anyhow::Result<AttemptColumns> {
    query::<AttemptColumns>(
        db,
        "SELECT attempts, last_error FROM stigg_subscription_provisions \
         WHERE stripe_subscription_id = 'sub_A1'",
    )
    .await?
    .pop()
    .context("no provisioning row for sub_A1")
}

async fn load_is_pending_then_done(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    let (org, sub) = (org_id("org_1"), sub_id("sub_A1"));
    assert_eq!(
        db.load(&org, &sub).await?,
        ProvisioningState::Pending { customer: None }
    );

    db.record_customer(&customer()?).await?;
    assert_eq!(
        db.load(&org, &sub).await?,
        ProvisioningState::Pending {
            customer: Some(customer()?)
        }
    );

    // An attempt without a result is still pending.
    let now = utc(2026, 11, 24, 10, 0, 1)?;
    assert!(db.start_attempt(&org, &sub, now).await?);
    assert_eq!(
        db.load(&org, &sub).await?,
        ProvisioningState::Pending {
            customer: Some(customer()?)
        }
    );

    db.record_subscription(&done()?).await?;
    assert_eq!(db.load(&org, &sub).await?, ProvisioningState::Done(done()?));
    Ok(())
}

/// The record follows the customer as it was last provisioned (a new billing id after the
/// organization's Stripe customer changed), and can be forgotten when Stigg lost it.
async fn record_customer_replaces_and_forget_removes(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    db.record_customer(&customer()?).await?;
    db.record_customer(&customer()?).await?;
    let mut moved = customer()?;
    moved.provisioned_at = utc(2027, 1, 1, 0, 0, 0)?;
    moved.billing_id = "cus_B9".parse()?;
    db.record_customer(&moved).await?;
    let (org, sub) = (org_id("org_1"), sub_id("sub_A1"));
    assert_eq!(
        db.load(&org, &sub).await?,
        ProvisioningState::Pending {
            customer: Some(moved)
        },
    );
    db.forget_customer(&org).await?;
    db.forget_customer(&org).await?;
    assert_eq!(
        db.load(&org, &sub).await?,
        ProvisioningState::Pending { customer: None }
    );
    Ok(())
}

async fn attempts_are_counted_until_the_subscription_is_provisioned(
    db: TestDatabase,
) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    let (org, sub) = (org_id("org_1"), sub_id("sub_A1"));
    let t0 = utc(2026, 11, 24, 10, 0, 0)?;
    assert!(
        db.start_attempt(&org, &sub, t0).await?,
        "the first attempt makes the record"
    );
    assert!(db.start_attempt(&org, &sub, t0).await?);
    assert_eq!(attempt_columns(&db).await?.attempts, 2);

    db.record_subscription(&done()?).await?;
    assert!(
        !db.start_attempt(&org, &sub, t0).await?,
        "a provisioned subscription takes no more attempts"
    );
    assert_eq!(attempt_columns(&db).await?.attempts, 2);
    assert_eq!(db.load(&org, &sub).await?, ProvisioningState::Done(done()?));
    Ok(())
}

async fn record_failure_keeps_the_start_of_the_reason(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    let (org, sub) = (org_id("org_1"), sub_id("sub_A1"));
    db.start_attempt(&org, &sub, utc(2026, 11, 24, 10, 0, 0)?)
        .await?;
    let long = format!("boom {}", "é".repeat(2000));
    db.record_failure(&sub, &long).await?;
    let row = attempt_columns(&db).await?;
    assert_eq!(row.attempts, 1);
    let stored = row.last_error.context("last_error")?;
    assert_eq!(stored.chars().count(), 1000);
    assert!(long.starts_with(&stored));

    // A failure reported after another holder finished is not kept.
    db.record_subscription(&done()?).await?;
    db.record_failure(&sub, "late failure").await?;
    assert_eq!(attempt_columns(&db).await?.last_error, None);
    Ok(())
}

async fn record_subscription_clears_the_failure(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    let (org, sub) = (org_id("org_1"), sub_id("sub_A1"));
    let t0 = utc(2026, 11, 24, 10, 0, 0)?;
    db.start_attempt(&org, &sub, t0).await?;
    db.record_failure(&sub, "first try failed").await?;
    db.start_attempt(&org, &sub, t0).await?;

    db.record_subscription(&done()?).await?;
    let row = attempt_columns(&db).await?;
    assert_eq!(row.last_error, None, "a success clears the last failure");
    assert_eq!(row.attempts, 2);

    // Recording without any attempt recorded before works too.
    db.execute(
        "INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at) \
         VALUES ('s_9', 'org_1', 'sub_A9', 'plan_starter_m', 'active', NULL)",
    )
    .await?;
    let mut other = done()?;
    other.stripe_subscription_id = sub_id("sub_A9");
    other.stigg_subscription_id = "sub_A9".into();
    db.record_subscription(&other).await?;
    assert_eq!(
        db.load(&org, &sub_id("sub_A9")).await?,
        ProvisioningState::Done(other)
    );
    Ok(())
}

async fn fifty_concurrent_first_attempts_make_one_record(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    let now = chrono::Utc::now();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let db = db.database().clone();
            tokio::spawn(async move {
                db.start_attempt(&org_id("org_1"), &sub_id("sub_A1"), now)
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await??);
    }
    assert_eq!(attempt_columns(&db).await?.attempts, 50);
    Ok(())
}
