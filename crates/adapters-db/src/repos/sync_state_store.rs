//! The record of what the lifecycle sync applied in Stigg, one row per Stripe subscription.
//! Every write is one upsert, so the first write of a subscription creates its row; the read
//! route's view is one query on the record, and one on provisioning when there is none or
//! its runs applied nothing yet.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onboarding_domain::model::{
    AppliedState, AppliedStatus, OrgId, StripeEventId, StripeSubscriptionId,
};
use onboarding_domain::ports::{Intent, RepoError, SyncRecord, SyncStateStore, SyncView};

use super::stored_error;
use crate::dispatch::with_conn;
use crate::json::intent_to_json;
use crate::pool::Database;
use crate::rows::{AppliedRow, IntentRow, OutcomeRow, SyncStateRow, applied_status_str, utc};
use crate::schema::{
    organizations, stigg_subscription_provisions as ssp, stigg_sync_states as sss, subscriptions,
};

/// What provisioning recorded for a subscription never synced since.
type ProvisionedRow = (
    String,
    Option<String>,
    Option<String>,
    Option<NaiveDateTime>,
    Option<String>,
    Option<NaiveDateTime>,
    Option<String>,
);

#[async_trait]
impl SyncStateStore for Database {
    async fn load(
        &self,
        subscription: &StripeSubscriptionId,
    ) -> Result<Option<SyncRecord>, RepoError> {
        let row = with_conn!(self.pool, |conn| {
            sss::table
                .find(subscription.as_str())
                .select(SyncStateRow::as_select())
                .first(conn)
                .await
                .optional()
        })?;
        row.map(SyncRecord::try_from).transpose()
    }

    async fn record_intent(
        &self,
        subscription: &StripeSubscriptionId,
        org_id: &OrgId,
        intent: &Intent,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let intent = intent_to_json(intent)?;
        let row = IntentRow {
            stripe_subscription_id: subscription.as_str(),
            organization_id: org_id.as_str(),
            intent: &intent,
            updated_at: now.naive_utc(),
        };
        with_conn!(self.pool, |conn| {
            diesel::insert_into(sss::table)
                .values(&row)
                .on_conflict(sss::stripe_subscription_id)
                .do_update()
                .set((
                    sss::intent.eq(row.intent),
                    sss::updated_at.eq(row.updated_at),
                ))
                .execute(conn)
                .await
        })?;
        Ok(())
    }

    async fn clear_intent(&self, subscription: &StripeSubscriptionId) -> Result<(), RepoError> {
        with_conn!(self.pool, |conn| {
            diesel::update(sss::table.find(subscription.as_str()))
                .set(sss::intent.eq(None::<String>))
                .execute(conn)
                .await
        })?;
        Ok(())
    }

    async fn record_applied(
        &self,
        subscription: &StripeSubscriptionId,
        org_id: &OrgId,
        stigg_customer_id: &str,
        applied: &AppliedState,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let moves_applied = i64::try_from(applied.moves_applied).map_err(|_| {
            RepoError::Unexpected(format!(
                "{} moves applied is more than the database holds",
                applied.moves_applied
            ))
        })?;
        let row = AppliedRow {
            stripe_subscription_id: subscription.as_str(),
            organization_id: org_id.as_str(),
            stigg_customer_id,
            stigg_subscription_id: &applied.stigg_subscription_id,
            plan_code: applied.plan.as_str(),
            status: applied_status_str(applied.status),
            trial_ends_at: applied.trial_end.map(|at| at.naive_utc()),
            cancellation_date: applied.cancellation_date.map(|at| at.naive_utc()),
            moves_applied,
            intent: None,
            last_error: None,
            updated_at: now.naive_utc(),
        };
        with_conn!(self.pool, |conn| {
            diesel::insert_into(sss::table)
                .values(&row)
                .on_conflict(sss::stripe_subscription_id)
                .do_update()
                .set((
                    sss::stigg_customer_id.eq(row.stigg_customer_id),
                    sss::stigg_subscription_id.eq(row.stigg_subscription_id),
                    sss::plan_code.eq(row.plan_code),
                    sss::status.eq(row.status),
                    sss::trial_ends_at.eq(row.trial_ends_at),
                    sss::cancellation_date.eq(row.cancellation_date),
                    sss::moves_applied.eq(row.moves_applied),
                    sss::intent.eq(None::<String>),
                    sss::last_error.eq(None::<String>),
                    sss::updated_at.eq(row.updated_at),
                ))
                .execute(conn)
                .await
        })?;
        Ok(())
    }

    async fn record_outcome<'a>(
        &self,
        subscription: &StripeSubscriptionId,
        org_id: &OrgId,
        event: Option<&'a StripeEventId>,
        error: Option<&'a str>,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let now = now.naive_utc();
        let row = OutcomeRow {
            stripe_subscription_id: subscription.as_str(),
            organization_id: org_id.as_str(),
            last_synced_at: now,
            last_event_id: event.map(StripeEventId::as_str),
            last_error: error.map(stored_error),
            updated_at: now,
        };
        let last_error = row.last_error.as_deref();
        // One statement either way: without an event, the update keeps the last one.
        with_conn!(self.pool, |conn| {
            let upsert = diesel::insert_into(sss::table)
                .values(&row)
                .on_conflict(sss::stripe_subscription_id)
                .do_update();
            match row.last_event_id {
                Some(event) => {
                    upsert
                        .set((
                            sss::last_synced_at.eq(now),
                            sss::last_event_id.eq(event),
                            sss::last_error.eq(last_error),
                            sss::updated_at.eq(now),
                        ))
                        .execute(conn)
                        .await
                }
                None => {
                    upsert
                        .set((
                            sss::last_synced_at.eq(now),
                            sss::last_error.eq(last_error),
                            sss::updated_at.eq(now),
                        ))
                        .execute(conn)
                        .await
                }
            }
        })?;
        Ok(())
    }

    async fn view(
        &self,
        subscription: &StripeSubscriptionId,
    ) -> Result<Option<SyncView>, RepoError> {
        // First query: the sync record, with its organization's tenant and when provisioning
        // finished, if it did.
        let synced = with_conn!(self.pool, |conn| {
            sss::table
                .left_join(organizations::table.on(organizations::id.eq(sss::organization_id)))
                .left_join(
                    ssp::table.on(ssp::stripe_subscription_id.eq(sss::stripe_subscription_id)),
                )
                .filter(sss::stripe_subscription_id.eq(subscription.as_str()))
                .select((
                    SyncStateRow::as_select(),
                    organizations::tenant_id.nullable(),
                    ssp::provisioned_at.nullable(),
                ))
                .first::<(SyncStateRow, Option<String>, Option<NaiveDateTime>)>(conn)
                .await
                .optional()
        })?;
        let Some((row, tenant_id, provisioned_at)) = synced else {
            return self.provisioned_view(subscription).await;
        };
        let synced = SyncView {
            stripe_subscription_id: subscription.clone(),
            org_id: row.organization_id,
            tenant_id,
            stigg_customer_id: row.stigg_customer_id,
            stigg_subscription_id: row.stigg_subscription_id,
            plan_code: row.plan_code,
            status: row.status,
            trial_ends_at: row.trial_ends_at.map(utc),
            cancellation_date: row.cancellation_date.map(utc),
            provisioned_at: provisioned_at.map(utc),
            last_synced_at: row.last_synced_at.map(utc),
            last_event_id: row.last_event_id,
            last_error: row.last_error,
        };
        // A record whose runs applied nothing yet (they moved nothing, failed, or left an
        // intent): Stigg still holds what provisioning created, with the runs' outcome.
        let applied_nothing = synced.stigg_subscription_id.is_none()
            || synced.plan_code.is_none()
            || synced.status.is_none();
        // The join above already says whether provisioning finished.
        if applied_nothing
            && synced.provisioned_at.is_some()
            && let Some(provisioned) = self.provisioned_view(subscription).await?
        {
            return Ok(Some(SyncView {
                last_synced_at: synced.last_synced_at,
                last_event_id: synced.last_event_id,
                last_error: synced.last_error,
                ..provisioned
            }));
        }
        Ok(Some(synced))
    }
}

impl Database {
    /// What provisioning created for `subscription`, once it finished, with the plan and
    /// trial of the subscription it provisioned; the sync's columns empty.
    async fn provisioned_view(
        &self,
        subscription: &StripeSubscriptionId,
    ) -> Result<Option<SyncView>, RepoError> {
        let provisioned = with_conn!(self.pool, |conn| {
            ssp::table
                .left_join(
                    subscriptions::table
                        .on(subscriptions::stripe_subscription_id.eq(ssp::stripe_subscription_id)),
                )
                .left_join(organizations::table.on(organizations::id.eq(ssp::organization_id)))
                .filter(ssp::stripe_subscription_id.eq(subscription.as_str()))
                .filter(ssp::provisioned_at.is_not_null())
                .select((
                    ssp::organization_id,
                    ssp::stigg_customer_id,
                    ssp::stigg_subscription_id,
                    ssp::provisioned_at,
                    subscriptions::plan_code.nullable(),
                    subscriptions::trial_ends_at.nullable(),
                    organizations::tenant_id.nullable(),
                ))
                .first::<ProvisionedRow>(conn)
                .await
                .optional()
        })?;
        Ok(provisioned.map(
            |(
                org_id,
                stigg_customer_id,
                stigg_subscription_id,
                provisioned_at,
                plan_code,
                trial_ends_at,
                tenant_id,
            )| SyncView {
                stripe_subscription_id: subscription.clone(),
                org_id,
                tenant_id,
                stigg_customer_id,
                stigg_subscription_id,
                plan_code,
                // Provisioning creates an active subscription; nothing changed it since.
                status: Some(applied_status_str(AppliedStatus::Active).to_owned()),
                trial_ends_at: trial_ends_at.map(utc),
                cancellation_date: None,
                provisioned_at: provisioned_at.map(utc),
                last_synced_at: None,
                last_event_id: None,
                last_error: None,
            },
        ))
    }
}
