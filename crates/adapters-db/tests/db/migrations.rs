//! Migrations up / down / up, readiness, and the columns both backends create.

use diesel::sql_types::{Integer, Text};
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_adapters_db::{Backend, pending_migrations, revert_all_migrations, run_migrations};
use onboarding_domain::ports::RepoError;

use crate::support::{CONTRACT_SEED, TestResult, on_both_backends, query};

on_both_backends!(
    nothing_is_pending_after_migrating,
    migrations_go_down_and_up_again,
    concurrent_migrations_apply_once,
    columns_are_the_same_on_both_backends,
    live_provisioning_leases_of_the_previous_release_carry_over,
    ping_answers_until_the_pool_closes,
);

const MIGRATIONS: [&str; 6] = [
    "2026-11-24-000001_onboarding_tables",
    "2026-12-04-000001_debug_log_row_key",
    "2026-12-04-000002_leases",
    "2026-12-04-000003_stripe_sync",
    "2026-12-05-000001_stigg_budget",
    "2026-12-05-000002_stigg_budget_take",
];
const TABLES: [&str; 9] = [
    "organizations",
    "subscriptions",
    "stigg_customer_provisions",
    "stigg_subscription_provisions",
    "debug_logs",
    "leases",
    "stripe_events",
    "stigg_sync_states",
    "stigg_rate_buckets",
];

async fn nothing_is_pending_after_migrating(db: TestDatabase) -> TestResult {
    assert_eq!(pending_migrations(db.pool()).await?, 0);
    assert!(
        run_migrations(db.pool()).await?.is_empty(),
        "already applied"
    );
    Ok(())
}

async fn migrations_go_down_and_up_again(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    assert_eq!(
        revert_all_migrations(db.pool()).await?,
        [
            "20261205000002",
            "20261205000001",
            "20261204000003",
            "20261204000002",
            "20261204000001",
            "20261124000001"
        ]
    );
    assert_eq!(pending_migrations(db.pool()).await?, MIGRATIONS.len());
    for table in TABLES {
        assert!(
            db.execute(&format!("SELECT 1 FROM {table}")).await.is_err(),
            "{table} should be gone"
        );
    }

    assert_eq!(run_migrations(db.pool()).await?, MIGRATIONS);
    assert_eq!(pending_migrations(db.pool()).await?, 0);
    for table in TABLES {
        db.execute(&format!("SELECT 1 FROM {table}")).await?;
    }
    db.execute(CONTRACT_SEED).await?;
    Ok(())
}

async fn concurrent_migrations_apply_once(db: TestDatabase) -> TestResult {
    revert_all_migrations(db.pool()).await?;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let pool = db.pool().clone();
            tokio::spawn(async move { run_migrations(&pool).await })
        })
        .collect();
    let mut applied = Vec::new();
    for run in runs {
        applied.extend(run.await??);
    }
    assert_eq!(
        applied, MIGRATIONS,
        "one instance applies, the others find nothing to do"
    );
    assert_eq!(pending_migrations(db.pool()).await?, 0);
    Ok(())
}

#[derive(Debug, PartialEq, Eq, diesel::QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    nullable: i32,
}

async fn columns_are_the_same_on_both_backends(db: TestDatabase) -> TestResult {
    // (column, nullable) in creation order, as schema.rs declares them.
    let expected: [(&str, &[(&str, bool)]); 9] = [
        (
            "organizations",
            &[
                ("id", false),
                ("name", false),
                ("tenant_id", true),
                ("stripe_customer_id", true),
                ("email", true),
                ("created_at", false),
                ("updated_at", false),
            ],
        ),
        (
            "subscriptions",
            &[
                ("id", false),
                ("organization_id", false),
                ("stripe_subscription_id", false),
                ("plan_code", false),
                ("status", false),
                ("trial_ends_at", true),
                ("created_at", false),
                ("updated_at", false),
            ],
        ),
        (
            "stigg_customer_provisions",
            &[
                ("organization_id", false),
                ("stigg_customer_id", false),
                ("billing_id", false),
                ("provisioned_at", false),
            ],
        ),
        (
            "stigg_subscription_provisions",
            &[
                ("stripe_subscription_id", false),
                ("organization_id", false),
                ("stigg_customer_id", true),
                ("stigg_subscription_id", true),
                ("provisioned_at", true),
                ("lease_holder", true),
                ("lease_expires_at", true),
                ("attempts", false),
                ("last_error", true),
                ("updated_at", false),
            ],
        ),
        (
            "debug_logs",
            &[
                ("id", false),
                ("request_id", true),
                ("correlation_id", true),
                ("tenant_id", true),
                ("method", false),
                ("path", false),
                ("request_body", true),
                ("status", false),
                ("error_code", true),
                ("duration_ms", false),
                ("created_at", false),
                ("row_key", true),
            ],
        ),
        (
            "leases",
            &[
                ("lease_key", false),
                ("holder", false),
                ("expires_at", false),
                ("taken_at", false),
            ],
        ),
        (
            "stripe_events",
            &[
                ("event_id", false),
                ("event_type", false),
                ("object_id", false),
                ("livemode", false),
                ("stripe_created_at", true),
                ("payload", false),
                ("status", false),
                ("attempts", false),
                ("received_at", false),
                ("next_attempt_at", false),
                ("processed_at", true),
                ("error", true),
                ("moves", true),
            ],
        ),
        (
            "stigg_rate_buckets",
            &[("bucket_key", false), ("tat", false)],
        ),
        (
            "stigg_sync_states",
            &[
                ("stripe_subscription_id", false),
                ("organization_id", false),
                ("stigg_customer_id", true),
                ("stigg_subscription_id", true),
                ("plan_code", true),
                ("status", true),
                ("trial_ends_at", true),
                ("cancellation_date", true),
                ("moves_applied", false),
                ("intent", true),
                ("last_synced_at", true),
                ("last_event_id", true),
                ("last_error", true),
                ("updated_at", false),
            ],
        ),
    ];
    for (table, columns) in expected {
        let sql = match db.backend() {
            Backend::Sqlite => format!(
                "SELECT name, CASE WHEN \"notnull\" = 0 AND pk = 0 THEN 1 ELSE 0 END AS nullable \
                 FROM pragma_table_info('{table}') ORDER BY cid"
            ),
            Backend::Postgres => format!(
                "SELECT column_name::text AS name, \
                 CASE WHEN is_nullable = 'YES' THEN 1 ELSE 0 END AS nullable \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = '{table}' \
                 ORDER BY ordinal_position"
            ),
        };
        let actual = query::<Column>(&db, &sql).await?;
        let expected: Vec<Column> = columns
            .iter()
            .map(|(name, nullable)| Column {
                name: (*name).to_owned(),
                nullable: i32::from(*nullable),
            })
            .collect();
        assert_eq!(actual, expected, "{table} on {}", db.backend());
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq, diesel::QueryableByName)]
struct CarriedLease {
    #[diesel(sql_type = Text)]
    lease_key: String,
    #[diesel(sql_type = Text)]
    holder: String,
}

/// An instance of the previous release may hold a provisioning lease (in the provisioning
/// row) while the new release migrates: the lease moves to `leases`, so no second attempt
/// starts before it ends. Finished provisionings leave nothing behind.
async fn live_provisioning_leases_of_the_previous_release_carry_over(
    db: TestDatabase,
) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    db.execute("DROP TABLE leases").await?;
    db.execute("DELETE FROM __diesel_schema_migrations WHERE version = '20261204000002'")
        .await?;
    db.execute(
        "INSERT INTO stigg_subscription_provisions \
           (stripe_subscription_id, organization_id, lease_holder, lease_expires_at, attempts, updated_at) \
         VALUES ('sub_A1', 'org_1', 'old-holder', '2030-01-01 00:00:00', 1, '2029-12-31 23:59:40'), \
                ('sub_A2', 'org_1', NULL, NULL, 1, '2029-12-31 23:59:40')",
    )
    .await?;
    db.execute(
        "INSERT INTO stigg_subscription_provisions \
           (stripe_subscription_id, organization_id, stigg_customer_id, stigg_subscription_id, \
            provisioned_at, lease_holder, lease_expires_at, attempts, updated_at) \
         VALUES ('sub_A3', 'org_1', 'org_1', 'sub_A3', '2029-12-31 23:59:50', 'done-holder', \
                 '2030-01-01 00:00:00', 1, '2029-12-31 23:59:50')",
    )
    .await?;

    assert_eq!(
        run_migrations(db.pool()).await?,
        ["2026-12-04-000002_leases"]
    );
    let carried = query::<CarriedLease>(
        &db,
        "SELECT lease_key, holder FROM leases ORDER BY lease_key",
    )
    .await?;
    assert_eq!(
        carried,
        [CarriedLease {
            lease_key: "subscription:sub_A1".into(),
            holder: "old-holder".into(),
        }]
    );
    Ok(())
}

async fn ping_answers_until_the_pool_closes(db: TestDatabase) -> TestResult {
    db.ping().await?;
    db.pool().close();
    match db.ping().await {
        Err(RepoError::Unavailable(message)) => assert!(message.contains("closed"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    Ok(())
}

/// The readiness probe reads; it creates nothing, even on a database never migrated.
#[tokio::test]
async fn counting_pending_migrations_writes_nothing() -> TestResult {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDatabase::unmigrated(backend).await;
        assert_eq!(pending_migrations(db.pool()).await?, MIGRATIONS.len());
        // Still unmigrated: the bookkeeping table was not created by the count.
        assert!(
            db.execute("SELECT 1 FROM __diesel_schema_migrations")
                .await
                .is_err(),
            "{backend}: the probe created the bookkeeping table"
        );
    }
    Ok(())
}

/// A least-privilege runtime role (it may read and write rows, not create tables) is ready.
#[tokio::test]
async fn a_role_that_may_not_create_tables_sees_the_schema_ready() -> TestResult {
    let db = TestDatabase::postgres().await;
    let role = format!("runtime_{}", std::process::id());
    db.execute(&format!(
        "DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;
         REVOKE CREATE ON SCHEMA public FROM {role};
         GRANT USAGE ON SCHEMA public TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};"
    ))
    .await?;
    let mut url = url::Url::parse(db.url())?;
    url.set_username(&role)
        .map_err(|()| anyhow::anyhow!("cannot set the user"))?;
    let runtime =
        onboarding_adapters_db::connect(&onboarding_adapters_db::DbConfig::new(url.to_string()))
            .await?;
    assert_eq!(pending_migrations(runtime.pool()).await?, 0);
    Ok(())
}
