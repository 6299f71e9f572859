use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onboarding_domain::model::{Organization, StripeSubscriptionId, Subscription};
use onboarding_domain::ports::{RepoError, SubscriptionRepo};

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

impl Database {
    /// Subscriptions whose provisioning in Stigg has not finished (never attempted, or
    /// attempted without success), with their organizations, in subscription id order:
    /// the work list of `onboarding reconcile`.
    pub async fn list_unprovisioned(
        &self,
        limit: i64,
    ) -> Result<Vec<(Organization, Subscription)>, RepoError> {
        let rows = with_conn!(self.pool, |conn| {
            subscriptions::table
                .inner_join(organizations::table)
                .left_join(
                    stigg_subscription_provisions::table
                        .on(stigg_subscription_provisions::stripe_subscription_id
                            .eq(subscriptions::stripe_subscription_id)),
                )
                .filter(stigg_subscription_provisions::provisioned_at.is_null())
                .order(subscriptions::id.asc())
                .limit(limit.max(0))
                .select((OrgRow::as_select(), SubscriptionRow::as_select()))
                .load::<(OrgRow, SubscriptionRow)>(conn)
                .await
        })?;
        rows.into_iter()
            .map(|(org, sub)| Ok((Organization::try_from(org)?, Subscription::try_from(sub)?)))
            .collect()
    }
}
