//! `SubscriptionRepo`, and `ProvisioningBacklog` (the work list of `onboarding reconcile`),
//! which reads the same table joined with the provisioning records.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onboarding_domain::model::{
    Organization, StripeSubscriptionId, Subscription, SubscriptionStatus,
};
use onboarding_domain::ports::{
    PendingProvisioning, ProvisioningBacklog, RepoError, SubscriptionRepo,
};

use crate::dispatch::with_conn;
use crate::pool::Database;
use crate::rows::{OrgRow, SubscriptionRow};
use crate::schema::{organizations, stigg_subscription_provisions, subscriptions};

#[async_trait]
impl SubscriptionRepo for Database {
    async fn find_by_stripe_id(
        &self,
        id: &StripeSubscriptionId,
    ) -> Result<Option<Subscription>, RepoError> {
        let row = with_conn!(self.pool, |conn| {
            subscriptions::table
                .filter(subscriptions::stripe_subscription_id.eq(id.as_str()))
                .select(SubscriptionRow::as_select())
                .first(conn)
                .await
                .optional()
        })?;
        row.map(Subscription::try_from).transpose()
    }
}

/// The backlog: subscriptions with a provisionable status and without a finished
/// `stigg_subscription_provisions` row (none at all, or one whose `provisioned_at` is not
/// set: an attempt in progress or failed), joined with their organizations. Every query is a single
/// statement on either backend.
#[async_trait]
impl ProvisioningBacklog for Database {
    async fn count_pending(&self) -> Result<u64, RepoError> {
        let count: i64 = with_conn!(self.pool, |conn| {
            pending_subscriptions()
                .filter(subscriptions::status.eq_any(provisionable()))
                .count()
                .get_result(conn)
                .await
        })?;
        row_count(count)
    }

    async fn count_skipped_by_status(&self) -> Result<Vec<(String, u64)>, RepoError> {
        let counts: Vec<(String, i64)> = with_conn!(self.pool, |conn| {
            pending_subscriptions()
                .filter(subscriptions::status.ne_all(provisionable()))
                .group_by(subscriptions::status)
                .select((subscriptions::status, diesel::dsl::count_star()))
                .order(subscriptions::status.asc())
                .load(conn)
                .await
        })?;
        counts
            .into_iter()
            .map(|(status, count)| Ok((status, row_count(count)?)))
            .collect()
    }

    async fn pending_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<PendingProvisioning>, RepoError> {
        // Keyset pagination on the unique `stripe_subscription_id`: each page starts after
        // the last key seen, so rows finished meanwhile are neither skipped nor repeated.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = with_conn!(self.pool, |conn| {
            let mut query = pending_subscriptions()
                .filter(subscriptions::status.eq_any(provisionable()))
                .order(subscriptions::stripe_subscription_id.asc())
                .limit(limit)
                .select((OrgRow::as_select(), SubscriptionRow::as_select()))
                .into_boxed();
            if let Some(after) = &after {
                query = query.filter(subscriptions::stripe_subscription_id.gt(after));
            }
            query.load::<(OrgRow, SubscriptionRow)>(conn).await
        })?;
        Ok(rows.into_iter().map(pending).collect())
    }
}

/// Subscriptions with their organizations and no finished provisioning row.
#[diesel::dsl::auto_type]
fn pending_subscriptions() -> _ {
    subscriptions::table
        .inner_join(organizations::table)
        .left_join(
            stigg_subscription_provisions::table
                .on(stigg_subscription_provisions::stripe_subscription_id
                    .eq(subscriptions::stripe_subscription_id)),
        )
        .filter(stigg_subscription_provisions::provisioned_at.is_null())
}

/// The statuses that are provisioned, as stored.
fn provisionable() -> Vec<String> {
    SubscriptionStatus::PROVISIONABLE
        .iter()
        .map(|status| status.as_str().to_owned())
        .collect()
}

fn row_count(count: i64) -> Result<u64, RepoError> {
    u64::try_from(count).map_err(|_| RepoError::Unexpected(format!("negative row count {count}")))
}

/// One backlog row; a row the domain refuses is listed with the reason, not dropped.
fn pending((org, subscription): (OrgRow, SubscriptionRow)) -> PendingProvisioning {
    let key = subscription.stripe_subscription_id.clone();
    match (
        Organization::try_from(org),
        Subscription::try_from(subscription),
    ) {
        (Ok(organization), Ok(subscription)) => {
            PendingProvisioning::readable(organization, subscription)
        }
        (Err(error), _) | (_, Err(error)) => {
            PendingProvisioning::unreadable(key, unreadable_reason(error))
        }
    }
}

fn unreadable_reason(error: RepoError) -> String {
    match error {
        RepoError::Unexpected(reason) | RepoError::Unavailable(reason) => reason,
    }
}
