//! Demo data, so that a fresh embedded database can serve a first provisioning request.

use chrono::{Duration, DurationRound, Utc};
use diesel_async::RunQueryDsl;

use crate::dispatch::with_conn;
use crate::error::DbError;
use crate::pool::Database;
use crate::rows::{NewOrgRow, NewSubscriptionRow};
use crate::schema::{organizations, subscriptions};

/// Inserts organization `org_demo` ("Demo Org", Stripe customer `cus_Demo1`) and its
/// trialing subscription `s_demo` (`sub_Demo1`, `plan_starter_m`, trial ending 14 days from
/// now). Rows that already exist are left as they are, so calling it again is harmless.
pub async fn seed_demo(db: &Database) -> Result<(), DbError> {
    let trial_end = (Utc::now() + Duration::days(14))
        .duration_trunc(Duration::seconds(1))
        .map_err(|e| DbError::Query(format!("cannot compute the demo trial end: {e}")))?;
    let org = NewOrgRow {
        id: "org_demo",
        name: "Demo Org",
        tenant_id: None,
        stripe_customer_id: Some("cus_Demo1"),
        email: None,
    };
    let subscription = NewSubscriptionRow {
        id: "s_demo",
        organization_id: "org_demo",
        stripe_subscription_id: "sub_Demo1",
        plan_code: "plan_starter_m",
        status: "trialing",
        trial_ends_at: Some(trial_end.naive_utc()),
    };
    with_conn!(db.pool, |conn| {
        diesel::insert_into(organizations::table)
            .values(&org)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        diesel::insert_into(subscriptions::table)
            .values(&subscription)
            .on_conflict_do_nothing()
            .execute(conn)
            .await
    })?;
    tracing::info!("demo organization org_demo and subscription sub_Demo1 are in place");
    Ok(())
}
