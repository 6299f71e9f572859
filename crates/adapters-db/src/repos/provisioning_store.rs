//! Provisioning state and the lease, with single portable statements: the lease is taken by
//! one conditional `UPDATE`, which both backends apply atomically (PostgreSQL re-checks the
//! condition after waiting for a concurrent writer; SQLite has one writer at a time).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onboarding_domain::model::{
    LeaseToken, OrgId, ProvisionedCustomer, ProvisionedSubscription, ProvisioningState,
    StripeSubscriptionId,
};
use onboarding_domain::ports::{ProvisioningStore, RepoError};
use onboarding_domain::text::truncate_chars;
use uuid::Uuid;

use crate::dispatch::with_conn;
use crate::pool::Database;
use crate::rows::{CustomerProvisionRow, DoneRow, NewLeaseRow, SubscriptionProvisionRow, storable};
use crate::schema::{stigg_customer_provisions, stigg_subscription_provisions as ssp};

/// `last_error` keeps the start of the failure message; the full one is in the logs.
const MAX_ERROR_CHARS: usize = 1000;

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

    async fn try_acquire_lease(
        &self,
        org_id: &OrgId,
        subscription: &StripeSubscriptionId,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<LeaseToken>, RepoError> {
        let expires_at = chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|ttl| now.checked_add_signed(ttl))
            .ok_or_else(|| RepoError::Unexpected(format!("lease duration {ttl:?} is too long")))?;
        let holder = Uuid::now_v7().to_string();
        let now_naive = now.naive_utc();
        let new_row = NewLeaseRow {
            stripe_subscription_id: subscription.as_str(),
            organization_id: org_id.as_str(),
            updated_at: now_naive,
        };
        let taken = with_conn!(self.pool, |conn| {
            // Make sure the row exists, then claim it if nobody holds a live lease.
            diesel::insert_into(ssp::table)
                .values(&new_row)
                .on_conflict(ssp::stripe_subscription_id)
                .do_nothing()
                .execute(conn)
                .await?;
            diesel::update(ssp::table)
                .filter(ssp::stripe_subscription_id.eq(subscription.as_str()))
                .filter(ssp::provisioned_at.is_null())
                .filter(
                    ssp::lease_holder
                        .is_null()
                        .or(ssp::lease_expires_at.lt(now_naive)),
                )
                .set((
                    ssp::lease_holder.eq(&holder),
                    ssp::lease_expires_at.eq(expires_at.naive_utc()),
                    ssp::attempts.eq(ssp::attempts + 1),
                    ssp::updated_at.eq(now_naive),
                ))
                .execute(conn)
                .await
        })?;
        Ok((taken == 1).then(|| LeaseToken {
            stripe_subscription_id: subscription.clone(),
            holder,
            expires_at,
        }))
    }

    async fn lease_expiry(
        &self,
        subscription: &StripeSubscriptionId,
    ) -> Result<Option<DateTime<Utc>>, RepoError> {
        let expires: Option<Option<NaiveDateTime>> = with_conn!(self.pool, |conn| {
            ssp::table
                .find(subscription.as_str())
                .filter(ssp::provisioned_at.is_null())
                .select(ssp::lease_expires_at)
                .first(conn)
                .await
                .optional()
        })?;
        Ok(expires.flatten().map(crate::rows::utc))
    }

    async fn release_lease(&self, lease: &LeaseToken, failure: &str) -> Result<(), RepoError> {
        let last_error = storable(truncate_chars(failure, MAX_ERROR_CHARS));
        let now = Utc::now().naive_utc();
        with_conn!(self.pool, |conn| {
            diesel::update(ssp::table)
                .filter(ssp::stripe_subscription_id.eq(lease.stripe_subscription_id.as_str()))
                .filter(ssp::lease_holder.eq(&lease.holder))
                .set((
                    ssp::lease_holder.eq(None::<String>),
                    ssp::lease_expires_at.eq(None::<NaiveDateTime>),
                    ssp::last_error.eq(last_error),
                    ssp::updated_at.eq(now),
                ))
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
            lease_holder: None,
            lease_expires_at: None,
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
                    ssp::lease_holder.eq(None::<String>),
                    ssp::lease_expires_at.eq(None::<NaiveDateTime>),
                    ssp::last_error.eq(None::<String>),
                    ssp::updated_at.eq(now),
                ))
                .execute(conn)
                .await
        })?;
        Ok(())
    }
}
