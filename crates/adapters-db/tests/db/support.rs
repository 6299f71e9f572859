//! What the test modules share: the two-backend test macro (the test support's), id helpers,
//! raw SQL access.

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use diesel::deserialize::QueryableByName;
use diesel::pg::Pg;
use diesel::sqlite::Sqlite;
use diesel_async::RunQueryDsl;
use onboarding_adapters_db::{Database, DbPool};
use onboarding_domain::model::{OrgId, StripeCustomerId, StripeSubscriptionId};

pub type TestResult = anyhow::Result<()>;

pub(crate) use onboarding_adapters_db::on_both_backends;

/// The seeding statements of the contract (section 4), verbatim.
pub const CONTRACT_SEED: &str = "\
INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('org_1', 'Acme', NULL, 'cus_A1');
INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
VALUES ('s_1', 'org_1', 'sub_A1', 'plan_starter_m', 'trialing', '2030-01-15 00:00:00');
";

pub fn org_id(raw: &str) -> OrgId {
    OrgId::parse(raw).expect("a valid organization id")
}

pub fn sub_id(raw: &str) -> StripeSubscriptionId {
    StripeSubscriptionId::parse(raw).expect("a valid subscription id")
}

pub fn cus_id(raw: &str) -> StripeCustomerId {
    StripeCustomerId::parse(raw).expect("a valid customer id")
}

pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> anyhow::Result<DateTime<Utc>> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .context("invalid test timestamp")
}

/// Runs a raw query (test-only SQL) on whichever backend `db` uses.
pub async fn query<T>(db: &Database, sql: &str) -> anyhow::Result<Vec<T>>
where
    T: QueryableByName<Sqlite> + QueryableByName<Pg> + Send + 'static,
{
    Ok(match db.pool() {
        DbPool::Sqlite(pool) => {
            let mut conn = pool.get().await?;
            diesel::sql_query(sql).load::<T>(&mut *conn).await?
        }
        DbPool::Postgres(pool) => {
            let mut conn = pool.get().await?;
            diesel::sql_query(sql).load::<T>(&mut *conn).await?
        }
    })
}
