//! The record of provisioning, one portable statement per step. An attempt is counted by one
//! upsert that leaves provisioned records alone; the lease that serialises attempts is in
//! `lease_store.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
// `filter` on an upsert: the `WHERE` of `ON CONFLICT … DO UPDATE`.
use diesel::query_dsl::methods::FilterDsl;
use diesel_async::RunQueryDsl;
use onboarding_domain::model::{
    OrgId, ProvisionedCustomer, ProvisionedSubscription, ProvisioningState, StripeSubscriptionId,
};
use onboarding_domain::ports::{ProvisioningStore, RepoError};

use super::stored_error;
use crate::dispatch::with_conn;
use crate::pool::Database;
use crate::rows::{CustomerProvisionRow, DoneRow, FirstAttemptRow, SubscriptionProvisionRow};
use crate::schema::{stigg_customer_provisions, stigg_subscription_provisions as ssp};

#[async_trait]
impl ProvisioningStore for Database {
    async fn load(
        &self,
        org_id: &OrgId,
        subscription: &StripeSubscriptionId,
    ) -> Result<ProvisioningState, RepoError> {
        let row = with_conn!(self.pool, |conn| {
            ssp::table
                .find(subscription.as_str())
                .select(SubscriptionProvisionRow::as_select())
                .first(conn)
                .await
                .optional()
        })?;
        if let Some(done) = row
            .map(SubscriptionProvisionRow::into_done)
            .transpose()?
            .flatten()
        {
            return Ok(ProvisioningState::Done(done));
        }
        let customer = with_conn!(self.pool, |conn| {
            stigg_customer_provisions::table
                .find(org_id.as_str())
                .select(CustomerProvisionRow::as_select())
                .first(conn)
                .await
                .optional()
        })?;
        Ok(ProvisioningState::Pending {
            customer: customer.map(ProvisionedCustomer::try_from).transpose()?,
        })
    }

    async fn customer(&self, org_id: &OrgId) -> Result<Option<ProvisionedCustomer>, RepoError> {
        let row = with_conn!(self.pool, |conn| {
            stigg_customer_provisions::table
                .find(org_id.as_str())
                .select(CustomerProvisionRow::as_select())
                .first(conn)
                .await
                .optional()
        })?;
        row.map(ProvisionedCustomer::try_from).transpose()
    }

    async fn start_attempt(
        &self,
        org_id: &OrgId,
        subscription: &StripeSubscriptionId,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let now = now.naive_utc();
        let first = FirstAttemptRow {
            stripe_subscription_id: subscription.as_str(),
            organization_id: org_id.as_str(),
            attempts: 1,
            updated_at: now,
        };
        // One statement: the record is created by the first attempt and counted by the
        // others, and the WHERE leaves a provisioned record alone (0 rows).
        let counted = with_conn!(self.pool, |conn| {
            diesel::insert_into(ssp::table)
                .values(&first)
                .on_conflict(ssp::stripe_subscription_id)
                .do_update()
                .set((ssp::attempts.eq(ssp::attempts + 1), ssp::updated_at.eq(now)))
                .filter(ssp::provisioned_at.is_null())
                .execute(conn)
                .await
        })?;
        Ok(counted == 1)
    }

    async fn record_failure(
        &self,
        subscription: &StripeSubscriptionId,
        failure: &str,
    ) -> Result<(), RepoError> {
        let last_error = stored_error(failure);
        let now = Utc::now().naive_utc();
        with_conn!(self.pool, |conn| {
            diesel::update(ssp::table)
                .filter(ssp::stripe_subscription_id.eq(subscription.as_str()))
                .filter(ssp::provisioned_at.is_null())
                .set((ssp::last_error.eq(last_error), ssp::updated_at.eq(now)))
                .execute(conn)
                .await
        })?;
        Ok(())
    }

    async fn record_customer(&self, customer: &ProvisionedCustomer) -> Result<(), RepoError> {
        let row = CustomerProvisionRow::from_domain(customer);
        with_conn!(self.pool, |conn| {
            diesel::insert_into(stigg_customer_provisions::table)
                .values(&row)
                .on_conflict(stigg_customer_provisions::organization_id)
                .do_update()
                .set((
                    stigg_customer_provisions::stigg_customer_id.eq(&row.stigg_customer_id),
                    stigg_customer_provisions::billing_id.eq(&row.billing_id),
                    stigg_customer_provisions::provisioned_at.eq(row.provisioned_at),
                ))
                .execute(conn)
                .await
        })?;
        Ok(())
    }

    async fn forget_customer(&self, org_id: &OrgId) -> Result<(), RepoError> {
        with_conn!(self.pool, |conn| {
            diesel::delete(stigg_customer_provisions::table.find(org_id.as_str()))
                .execute(conn)
                .await
        })?;
        Ok(())
    }

    async fn record_subscription(
        &self,
        subscription: &ProvisionedSubscription,
    ) -> Result<(), RepoError> {
        let provisioned_at = subscription.provisioned_at.naive_utc();
        let now = Utc::now().naive_utc();
        let row = DoneRow {
            stripe_subscription_id: subscription.stripe_subscription_id.as_str(),
            organization_id: subscription.org_id.as_str(),
            stigg_customer_id: Some(&subscription.stigg_customer_id),
            stigg_subscription_id: Some(&subscription.stigg_subscription_id),
            provisioned_at: Some(provisioned_at),
            last_error: None,
            updated_at: now,
        };
        with_conn!(self.pool, |conn| {
            diesel::insert_into(ssp::table)
                .values(&row)
                .on_conflict(ssp::stripe_subscription_id)
                .do_update()
                .set((
                    ssp::organization_id.eq(row.organization_id),
                    ssp::stigg_customer_id.eq(row.stigg_customer_id),
                    ssp::stigg_subscription_id.eq(row.stigg_subscription_id),
                    ssp::provisioned_at.eq(row.provisioned_at),
                    ssp::last_error.eq(None::<String>),
                    ssp::updated_at.eq(now),
                ))
                .execute(conn)
                .await
        })?;
        Ok(())
    }
}
