//! OrgRepo, SubscriptionRepo and seed_demo on rows seeded with plain SQL.

use anyhow::Context;
use chrono::Utc;
use onboarding_adapters_db::seed_demo;
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_domain::model::{Organization, Stored, Subscription, SubscriptionStatus};
use onboarding_domain::ports::{OrgRepo, ProvisioningBacklog, SubscriptionRepo};

use crate::support::{CONTRACT_SEED, TestResult, on_both_backends, org_id, sub_id, utc};

on_both_backends!(
    contract_seed_reads_back,
    missing_rows_are_none,
    tenant_and_email_are_read,
    trial_end_in_iso_formats_reads_the_same,
    seed_demo_is_idempotent,
    subscriptions_need_their_organization,
);

async fn contract_seed_reads_back(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;

    let org = db
        .find(&org_id("org_1"))
        .await?
        .context("org_1 not found")?;
    assert_eq!(
        org,
        Organization {
            id: org_id("org_1"),
            name: "Acme".into(),
            email: None,
            tenant_id: None,
            stripe_customer_id: Some(Stored::parse("cus_A1".into())),
        }
    );

    let sub = db
        .find_by_stripe_id(&sub_id("sub_A1"))
        .await?
        .context("sub_A1 not found")?;
    assert_eq!(
        sub,
        Subscription {
            id: "s_1".into(),
            organization_id: Stored::parse("org_1".into()),
            stripe_subscription_id: sub_id("sub_A1"),
            plan_code: Stored::parse("plan_starter_m".into()),
            status: SubscriptionStatus::Trialing,
            trial_ends_at: Some(utc(2030, 1, 15, 0, 0, 0)?),
        }
    );
    assert_eq!(
        sub.trial_ends_at.map(|t| t.to_rfc3339()),
        Some("2030-01-15T00:00:00+00:00".to_owned())
    );
    Ok(())
}

async fn missing_rows_are_none(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    assert_eq!(db.find(&org_id("org_2")).await?, None);
    assert_eq!(db.find_by_stripe_id(&sub_id("sub_B2")).await?, None);
    Ok(())
}

async fn tenant_and_email_are_read(db: TestDatabase) -> TestResult {
    db.execute(
        "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id, email) \
         VALUES ('org_t', 'Tenant Org', 'tenant-9', NULL, 'billing@example.com')",
    )
    .await?;
    let org = db
        .find(&org_id("org_t"))
        .await?
        .context("org_t not found")?;
    assert_eq!(org.tenant_id, Some(Stored::parse("tenant-9".into())));
    assert_eq!(org.email.as_deref(), Some("billing@example.com"));
    assert_eq!(org.stripe_customer_id, None);
    Ok(())
}

async fn trial_end_in_iso_formats_reads_the_same(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    db.execute(
        "INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at) \
         VALUES ('s_2', 'org_1', 'sub_Z2', 'plan_starter_m', 'trialing', '2030-01-15T00:00:00Z');
         INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at) \
         VALUES ('s_3', 'org_1', 'sub_Z3', 'plan_starter_m', 'trialing', '2030-01-15T00:00:00');
         INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at) \
         VALUES ('s_4', 'org_1', 'sub_Z4', 'plan_pro_m', 'active', NULL);",
    )
    .await?;
    let expected = Some(utc(2030, 1, 15, 0, 0, 0)?);
    for id in ["sub_A1", "sub_Z2", "sub_Z3"] {
        let sub = db.find_by_stripe_id(&sub_id(id)).await?.context(id)?;
        assert_eq!(sub.trial_ends_at, expected, "{id}");
    }
    let active = db
        .find_by_stripe_id(&sub_id("sub_Z4"))
        .await?
        .context("sub_Z4")?;
    assert_eq!(active.trial_ends_at, None);
    assert!(!active.is_trialing());
    Ok(())
}

async fn seed_demo_is_idempotent(db: TestDatabase) -> TestResult {
    seed_demo(&db).await?;
    seed_demo(&db).await?;
    let org = db.find(&org_id("org_demo")).await?.context("org_demo")?;
    assert_eq!(org.name, "Demo Org");
    assert_eq!(org.tenant_id, None);
    assert_eq!(
        org.stripe_customer_id,
        Some(Stored::parse("cus_Demo1".into()))
    );
    let sub = db
        .find_by_stripe_id(&sub_id("sub_Demo1"))
        .await?
        .context("sub_Demo1")?;
    assert_eq!(sub.id, "s_demo");
    assert_eq!(sub.organization_id.raw(), "org_demo");
    assert_eq!(sub.plan_code.raw(), "plan_starter_m");
    assert_eq!(sub.status, SubscriptionStatus::Trialing);
    let days = sub
        .trial_ends_at
        .map(|end| (end - Utc::now()).num_hours())
        .context("trial end")?;
    assert!((13 * 24..=14 * 24).contains(&days), "{days} hours");
    assert_eq!(db.count_pending().await?, 1);
    Ok(())
}

async fn subscriptions_need_their_organization(db: TestDatabase) -> TestResult {
    // Foreign keys are enforced on both backends (SQLite: `PRAGMA foreign_keys = ON` on
    // every pooled connection).
    let orphan = db
        .execute(
            "INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at) \
             VALUES ('s_x', 'org_missing', 'sub_X9', 'plan_starter_m', 'trialing', NULL)",
        )
        .await;
    assert!(orphan.is_err(), "an orphan subscription was accepted");
    Ok(())
}
