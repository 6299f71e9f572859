//! ProvisioningBacklog: which subscriptions are pending, and keyset pagination over them.

use chrono::Utc;
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_domain::model::{ProvisionedSubscription, Stored};
use onboarding_domain::ports::{PendingProvisioning, ProvisioningBacklog, ProvisioningStore};

use crate::support::{CONTRACT_SEED, TestResult, on_both_backends, org_id, sub_id};

on_both_backends!(
    only_unfinished_subscriptions_are_pending,
    pages_follow_the_key_without_skipping_or_repeating,
    the_limit_caps_a_page,
    unreadable_rows_are_listed_with_their_reason,
    subscriptions_whose_status_is_not_provisioned_are_counted_not_listed,
);

/// `org_id/subscription row id` of each readable item, `key!` for an unreadable one.
fn names(page: &[PendingProvisioning]) -> Vec<String> {
    page.iter()
        .map(|item| match &item.rows {
            Ok((org, sub)) => format!("{}/{}", org.id, sub.id),
            Err(_) => format!("{}!", item.key),
        })
        .collect()
}

fn keys(page: &[PendingProvisioning]) -> Vec<&str> {
    page.iter().map(|item| item.key.as_str()).collect()
}

/// Organization `org_p` and subscriptions `sub_P01..sub_P{n}` (ids that sort the same under
/// any collation: one case, zero-padded).
async fn seed_many(db: &TestDatabase, n: usize) -> anyhow::Result<()> {
    let mut sql = String::from(
        "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('org_p', 'Paged', NULL, 'cus_P1');\n",
    );
    // Inserted out of order: the order comes from the query, not from the insertion.
    for i in (1..=n).rev() {
        sql.push_str(&format!(
            "INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at) \
             VALUES ('s_p{i:02}', 'org_p', 'sub_P{i:02}', 'plan_starter_m', 'trialing', NULL);\n"
        ));
    }
    db.execute(&sql).await?;
    Ok(())
}

fn finished(org: &str, sub: &str) -> ProvisionedSubscription {
    ProvisionedSubscription {
        org_id: org_id(org),
        stripe_subscription_id: sub_id(sub),
        stigg_customer_id: org.into(),
        stigg_subscription_id: sub.into(),
        provisioned_at: Utc::now(),
    }
}

async fn only_unfinished_subscriptions_are_pending(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    db.execute(
        "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('org_2', 'Beta', 't2', 'cus_B2');
         INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
         VALUES ('s_2', 'org_2', 'sub_B2', 'plan_pro_m', 'trialing', NULL);
         INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
         VALUES ('s_3', 'org_2', 'sub_B3', 'plan_pro_y', 'active', NULL);",
    )
    .await?;
    assert_eq!(db.count_pending().await?, 3);
    assert_eq!(
        names(&db.pending_page(None, 10).await?),
        ["org_1/s_1", "org_2/s_2", "org_2/s_3"]
    );

    // An attempt, and a failed one, leave a subscription pending; a recorded result does not.
    db.start_attempt(&org_id("org_1"), &sub_id("sub_A1"), Utc::now())
        .await?;
    db.start_attempt(&org_id("org_2"), &sub_id("sub_B3"), Utc::now())
        .await?;
    db.record_failure(&sub_id("sub_B3"), "Stigg API unavailable")
        .await?;
    db.record_subscription(&finished("org_2", "sub_B2")).await?;

    assert_eq!(db.count_pending().await?, 2);
    let page = db.pending_page(None, 10).await?;
    assert_eq!(names(&page), ["org_1/s_1", "org_2/s_3"]);
    // The organization comes with its subscription.
    let (org, sub) = page[1].rows.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(org.tenant_id, Some(Stored::parse("t2".into())));
    assert_eq!(org.stripe_customer_id, Some(Stored::parse("cus_B2".into())));
    assert_eq!(sub.plan_code.raw(), "plan_pro_y");
    assert_eq!(sub.status.as_str(), "active");

    db.record_subscription(&finished("org_1", "sub_A1")).await?;
    db.record_subscription(&finished("org_2", "sub_B3")).await?;
    assert_eq!(db.count_pending().await?, 0);
    assert!(db.pending_page(None, 10).await?.is_empty());
    Ok(())
}

async fn pages_follow_the_key_without_skipping_or_repeating(db: TestDatabase) -> TestResult {
    seed_many(&db, 7).await?;
    assert_eq!(db.count_pending().await?, 7);

    let first = db.pending_page(None, 3).await?;
    assert_eq!(keys(&first), ["sub_P01", "sub_P02", "sub_P03"]);

    // Meanwhile: a subscription of the next page and one already read are finished, and a
    // new one appears behind the cursor. The next pages neither skip nor repeat a pending
    // row; the newcomer waits for the next run.
    db.record_subscription(&finished("org_p", "sub_P05"))
        .await?;
    db.record_subscription(&finished("org_p", "sub_P02"))
        .await?;
    db.execute(
        "INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at) \
         VALUES ('s_p00', 'org_p', 'sub_P00', 'plan_starter_m', 'trialing', NULL);",
    )
    .await?;

    let second = db.pending_page(Some("sub_P03".into()), 3).await?;
    assert_eq!(keys(&second), ["sub_P04", "sub_P06", "sub_P07"]);
    let third = db.pending_page(Some("sub_P07".into()), 3).await?;
    assert!(third.is_empty(), "{:?}", keys(&third));

    // A fresh run starts over and sees what is still pending, the newcomer included.
    assert_eq!(
        keys(&db.pending_page(None, 10).await?),
        [
            "sub_P00", "sub_P01", "sub_P03", "sub_P04", "sub_P06", "sub_P07"
        ]
    );
    assert_eq!(db.count_pending().await?, 6);
    Ok(())
}

async fn the_limit_caps_a_page(db: TestDatabase) -> TestResult {
    seed_many(&db, 4).await?;
    assert_eq!(keys(&db.pending_page(None, 1).await?), ["sub_P01"]);
    assert_eq!(
        keys(&db.pending_page(Some("sub_P01".into()), 2).await?),
        ["sub_P02", "sub_P03"]
    );
    assert!(db.pending_page(None, 0).await?.is_empty());
    Ok(())
}

async fn unreadable_rows_are_listed_with_their_reason(db: TestDatabase) -> TestResult {
    // Other systems write these tables: a value our rules refuse must not hide the rows
    // around it.
    db.execute(CONTRACT_SEED).await?;
    db.execute(
        "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('bad id!', 'Bad', NULL, 'cus_X1');
         INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
         VALUES ('s_x1', 'bad id!', 'sub_X1', 'plan_starter_m', 'trialing', NULL);
         INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
         VALUES ('s_y2', 'org_1', 'sub_Y-2', 'plan_starter_m', 'trialing', NULL);",
    )
    .await?;
    assert_eq!(db.count_pending().await?, 3);
    let page = db.pending_page(None, 10).await?;
    assert_eq!(names(&page), ["org_1/s_1", "sub_X1!", "sub_Y-2!"]);
    let reasons: Vec<&str> = page
        .iter()
        .filter_map(|item| item.rows.as_ref().err().map(String::as_str))
        .collect();
    assert!(
        reasons[0].contains("organizations.id holds \"bad id!\""),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("subscriptions.stripe_subscription_id holds \"sub_Y-2\""),
        "{reasons:?}"
    );
    // The cursor moves past an unreadable row like any other.
    assert_eq!(
        names(&db.pending_page(Some("sub_X1".into()), 10).await?),
        ["sub_Y-2!"]
    );
    Ok(())
}

async fn subscriptions_whose_status_is_not_provisioned_are_counted_not_listed(
    db: TestDatabase,
) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    let mut sql = String::new();
    for (i, status) in [
        "active", "past_due", "canceled", "unpaid", "canceled", "paused", "weird",
    ]
    .iter()
    .enumerate()
    {
        sql.push_str(&format!(
            "INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at) \
             VALUES ('s_s{i}', 'org_1', 'sub_S{i}', 'plan_starter_m', '{status}', NULL);\n"
        ));
    }
    db.execute(&sql).await?;

    assert_eq!(db.count_pending().await?, 3);
    assert_eq!(
        names(&db.pending_page(None, 10).await?),
        ["org_1/s_1", "org_1/s_s0", "org_1/s_s1"]
    );
    let skipped = db.count_skipped_by_status().await?;
    assert_eq!(
        skipped,
        [
            ("canceled".to_owned(), 2),
            ("paused".to_owned(), 1),
            ("unpaid".to_owned(), 1),
            ("weird".to_owned(), 1),
        ]
    );
    // A provisioned subscription is neither pending nor skipped, whatever its status now.
    db.execute(
        "INSERT INTO stigg_subscription_provisions (stripe_subscription_id, organization_id, stigg_customer_id, stigg_subscription_id, provisioned_at, updated_at) \
         VALUES ('sub_S3', 'org_1', 'org_1', 'sub_S3', '2030-01-01 00:00:00', '2030-01-01 00:00:00');",
    )
    .await?;
    let skipped = db.count_skipped_by_status().await?;
    assert!(
        !skipped.iter().any(|(status, _)| status == "unpaid"),
        "{skipped:?}"
    );
    Ok(())
}
