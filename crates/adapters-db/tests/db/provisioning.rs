//! ProvisioningStore: state, the lease, and what recording a result does.

use std::time::Duration;

use anyhow::Context;
use chrono::Duration as Span;
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
    lease_is_exclusive_until_it_expires,
    release_lease_records_the_failure,
    record_subscription_ends_the_lease,
    fifty_concurrent_acquires_yield_one_lease,
);

const TTL: Duration = Duration::from_secs(30);

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
struct LeaseColumns {
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    lease_holder: Option<String>,
}

async fn lease_columns(db: &TestDatabase) -> anyhow::Result<LeaseColumns> {
    query::<LeaseColumns>(
        db,
        "SELECT attempts, last_error, lease_holder FROM stigg_subscription_provisions \
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

    // A lease row without a result is still pending.
    let now = utc(2026, 11, 24, 10, 0, 1)?;
    db.try_acquire_lease(&org, &sub, now, TTL)
        .await?
        .context("lease")?;
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

async fn lease_is_exclusive_until_it_expires(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    let (org, sub) = (org_id("org_1"), sub_id("sub_A1"));
    let t0 = utc(2026, 11, 24, 10, 0, 0)?;

    let first = db
        .try_acquire_lease(&org, &sub, t0, TTL)
        .await?
        .context("first lease")?;
    assert_eq!(first.stripe_subscription_id, sub);
    assert_eq!(first.expires_at, t0 + Span::seconds(30));
    // A waiting caller can be told when the holder's lease ends.
    assert_eq!(db.lease_expiry(&sub).await?, Some(t0 + Span::seconds(30)));
    assert_eq!(db.lease_expiry(&sub_id("sub_Unknown1")).await?, None);
    assert!(db.try_acquire_lease(&org, &sub, t0, TTL).await?.is_none());
    assert!(
        db.try_acquire_lease(&org, &sub, t0 + Span::seconds(29), TTL)
            .await?
            .is_none(),
        "the lease is live until it expires"
    );

    let second = db
        .try_acquire_lease(&org, &sub, t0 + Span::seconds(31), TTL)
        .await?
        .context("an expired lease can be taken over")?;
    assert_ne!(second.holder, first.holder);

    // The first holder's late release must not free the second holder's lease.
    db.release_lease(&first, "late failure").await?;
    assert!(
        db.try_acquire_lease(&org, &sub, t0 + Span::seconds(32), TTL)
            .await?
            .is_none()
    );
    assert_eq!(lease_columns(&db).await?.last_error, None);

    db.release_lease(&second, "Stigg API unavailable after 3 attempts (HTTP 503)")
        .await?;
    let third = db
        .try_acquire_lease(&org, &sub, t0 + Span::seconds(33), TTL)
        .await?;
    assert!(third.is_some(), "a released lease can be taken at once");
    assert_eq!(lease_columns(&db).await?.attempts, 3);
    Ok(())
}

async fn release_lease_records_the_failure(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    let t0 = utc(2026, 11, 24, 10, 0, 0)?;
    let lease = db
        .try_acquire_lease(&org_id("org_1"), &sub_id("sub_A1"), t0, TTL)
        .await?
        .context("lease")?;
    let long = format!("boom {}", "é".repeat(2000));
    db.release_lease(&lease, &long).await?;
    let row = lease_columns(&db).await?;
    assert_eq!(row.lease_holder, None);
    assert_eq!(row.attempts, 1);
    let stored = row.last_error.context("last_error")?;
    assert_eq!(stored.chars().count(), 1000);
    assert!(long.starts_with(&stored));
    Ok(())
}

async fn record_subscription_ends_the_lease(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    let (org, sub) = (org_id("org_1"), sub_id("sub_A1"));
    let t0 = utc(2026, 11, 24, 10, 0, 0)?;
    let lease = db
        .try_acquire_lease(&org, &sub, t0, TTL)
        .await?
        .context("lease")?;
    db.release_lease(&lease, "first try failed").await?;
    db.try_acquire_lease(&org, &sub, t0 + Span::seconds(1), TTL)
        .await?
        .context("second lease")?;

    db.record_subscription(&done()?).await?;
    let row = lease_columns(&db).await?;
    assert_eq!(row.lease_holder, None);
    assert_eq!(row.last_error, None, "a success clears the last failure");
    assert_eq!(row.attempts, 2);
    // Provisioned: nobody gets a lease again, even long after.
    assert!(
        db.try_acquire_lease(&org, &sub, t0 + Span::days(1), TTL)
            .await?
            .is_none()
    );

    // Recording without any lease row (e.g. by the reconcile command) works too.
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

async fn fifty_concurrent_acquires_yield_one_lease(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    let now = chrono::Utc::now();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let db = db.database().clone();
            tokio::spawn(async move {
                db.try_acquire_lease(&org_id("org_1"), &sub_id("sub_A1"), now, TTL)
                    .await
            })
        })
        .collect();
    let mut leases = Vec::new();
    for task in tasks {
        if let Some(lease) = task.await?? {
            leases.push(lease);
        }
    }
    assert_eq!(
        leases.len(),
        1,
        "exactly one caller holds the lease: {leases:?}"
    );
    assert_eq!(lease_columns(&db).await?.attempts, 1);
    Ok(())
}
