//! Row structs: what diesel reads and writes. They never leave the crate; the repositories
//! turn them into domain types, checking the columns other systems write.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use onboarding_domain::model::{
    OrgId, Organization, ProvisionedCustomer, ProvisionedSubscription, Stored, StripeCustomerId,
    StripeSubscriptionId, Subscription, SubscriptionStatus,
};
use onboarding_domain::ports::{DebugLogEntry, RepoError};

use crate::error::bad_row;
use crate::schema::{
    debug_logs, leases, organizations, stigg_customer_provisions, stigg_subscription_provisions,
    subscriptions,
};

mod sync;

pub(crate) use sync::{
    AppliedRow, EventRow, IntentRow, NewEventRow, OutcomeRow, PendingEventRow, SyncStateRow,
    applied_status_str,
};

/// Timestamps are stored without a zone and hold UTC.
pub(crate) fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = organizations, check_for_backend(Sqlite, Pg))]
pub(crate) struct OrgRow {
    pub id: String,
    pub name: String,
    pub tenant_id: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub email: Option<String>,
}

impl TryFrom<OrgRow> for Organization {
    type Error = RepoError;

    fn try_from(row: OrgRow) -> Result<Self, RepoError> {
        let id = OrgId::parse(&row.id).map_err(|e| bad_row("organizations", "id", &row.id, e))?;
        Ok(Self {
            id,
            name: row.name,
            email: row.email,
            tenant_id: row.tenant_id.map(Stored::parse),
            stripe_customer_id: row.stripe_customer_id.map(Stored::parse),
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = organizations)]
pub(crate) struct NewOrgRow<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub tenant_id: Option<&'a str>,
    pub stripe_customer_id: Option<&'a str>,
    pub email: Option<&'a str>,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = subscriptions, check_for_backend(Sqlite, Pg))]
pub(crate) struct SubscriptionRow {
    pub id: String,
    pub organization_id: String,
    pub stripe_subscription_id: String,
    pub plan_code: String,
    pub status: String,
    pub trial_ends_at: Option<NaiveDateTime>,
}

impl TryFrom<SubscriptionRow> for Subscription {
    type Error = RepoError;

    fn try_from(row: SubscriptionRow) -> Result<Self, RepoError> {
        let stripe_subscription_id = StripeSubscriptionId::parse(&row.stripe_subscription_id)
            .map_err(|e| {
                bad_row(
                    "subscriptions",
                    "stripe_subscription_id",
                    &row.stripe_subscription_id,
                    e,
                )
            })?;
        Ok(Self {
            id: row.id,
            organization_id: Stored::parse(row.organization_id),
            stripe_subscription_id,
            plan_code: Stored::parse(row.plan_code),
            status: SubscriptionStatus::parse(&row.status),
            trial_ends_at: row.trial_ends_at.map(utc),
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = subscriptions)]
pub(crate) struct NewSubscriptionRow<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub stripe_subscription_id: &'a str,
    pub plan_code: &'a str,
    pub status: &'a str,
    pub trial_ends_at: Option<NaiveDateTime>,
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = stigg_customer_provisions, check_for_backend(Sqlite, Pg))]
pub(crate) struct CustomerProvisionRow {
    pub organization_id: String,
    pub stigg_customer_id: String,
    pub billing_id: String,
    pub provisioned_at: NaiveDateTime,
}

impl CustomerProvisionRow {
    pub fn from_domain(customer: &ProvisionedCustomer) -> Self {
        Self {
            organization_id: customer.org_id.as_str().to_owned(),
            stigg_customer_id: customer.stigg_customer_id.clone(),
            billing_id: customer.billing_id.as_str().to_owned(),
            provisioned_at: customer.provisioned_at.naive_utc(),
        }
    }
}

impl TryFrom<CustomerProvisionRow> for ProvisionedCustomer {
    type Error = RepoError;

    fn try_from(row: CustomerProvisionRow) -> Result<Self, RepoError> {
        const TABLE: &str = "stigg_customer_provisions";
        let org_id = OrgId::parse(&row.organization_id)
            .map_err(|e| bad_row(TABLE, "organization_id", &row.organization_id, e))?;
        let billing_id = StripeCustomerId::parse(&row.billing_id)
            .map_err(|e| bad_row(TABLE, "billing_id", &row.billing_id, e))?;
        Ok(Self {
            org_id,
            stigg_customer_id: row.stigg_customer_id,
            billing_id,
            provisioned_at: utc(row.provisioned_at),
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = stigg_subscription_provisions, check_for_backend(Sqlite, Pg))]
pub(crate) struct SubscriptionProvisionRow {
    pub stripe_subscription_id: String,
    pub organization_id: String,
    pub stigg_customer_id: Option<String>,
    pub stigg_subscription_id: Option<String>,
    pub provisioned_at: Option<NaiveDateTime>,
}

impl SubscriptionProvisionRow {
    /// The finished provisioning, or `None` while it is still pending.
    pub fn into_done(self) -> Result<Option<ProvisionedSubscription>, RepoError> {
        const TABLE: &str = "stigg_subscription_provisions";
        let Some(provisioned_at) = self.provisioned_at else {
            return Ok(None);
        };
        let (Some(stigg_customer_id), Some(stigg_subscription_id)) =
            (self.stigg_customer_id, self.stigg_subscription_id)
        else {
            return Err(RepoError::Unexpected(format!(
                "{TABLE} row for {:?} is marked provisioned but lacks the Stigg ids",
                self.stripe_subscription_id
            )));
        };
        let org_id = OrgId::parse(&self.organization_id)
            .map_err(|e| bad_row(TABLE, "organization_id", &self.organization_id, e))?;
        let stripe_subscription_id = StripeSubscriptionId::parse(&self.stripe_subscription_id)
            .map_err(|e| {
                bad_row(
                    TABLE,
                    "stripe_subscription_id",
                    &self.stripe_subscription_id,
                    e,
                )
            })?;
        Ok(Some(ProvisionedSubscription {
            org_id,
            stripe_subscription_id,
            stigg_customer_id,
            stigg_subscription_id,
            provisioned_at: utc(provisioned_at),
        }))
    }
}

/// The row a subscription's first attempt creates.
#[derive(Debug, Insertable)]
#[diesel(table_name = stigg_subscription_provisions)]
pub(crate) struct FirstAttemptRow<'a> {
    pub stripe_subscription_id: &'a str,
    pub organization_id: &'a str,
    pub attempts: i32,
    pub updated_at: NaiveDateTime,
}

/// A lease as taken.
#[derive(Debug, Insertable)]
#[diesel(table_name = leases)]
pub(crate) struct LeaseRow<'a> {
    pub lease_key: &'a str,
    pub holder: &'a str,
    pub expires_at: NaiveDateTime,
    pub taken_at: NaiveDateTime,
}

/// The row of a finished provisioning (inserted when no attempt was recorded before).
#[derive(Debug, Insertable)]
#[diesel(table_name = stigg_subscription_provisions)]
pub(crate) struct DoneRow<'a> {
    pub stripe_subscription_id: &'a str,
    pub organization_id: &'a str,
    pub stigg_customer_id: Option<&'a str>,
    pub stigg_subscription_id: Option<&'a str>,
    pub provisioned_at: Option<NaiveDateTime>,
    pub last_error: Option<&'a str>,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = debug_logs)]
// `None` is NULL, not DEFAULT: SQLite takes no DEFAULT in a multi-row INSERT, and these
// columns have no defaults worth keeping.
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct NewDebugLogRow<'a> {
    pub row_key: &'a str,
    pub request_id: Option<Cow<'a, str>>,
    pub correlation_id: Option<Cow<'a, str>>,
    pub tenant_id: Option<Cow<'a, str>>,
    pub method: Cow<'a, str>,
    pub path: Cow<'a, str>,
    pub request_body: Option<Cow<'a, str>>,
    pub status: i32,
    pub error_code: Option<Cow<'a, str>>,
    pub duration_ms: i64,
    pub created_at: NaiveDateTime,
}

impl<'a> NewDebugLogRow<'a> {
    /// Every text column as PostgreSQL can store it (see [`storable`]), on both backends so
    /// that they keep the same rows.
    pub fn from_domain(entry: &'a DebugLogEntry) -> Self {
        let text = |value: &'a Option<String>| value.as_deref().map(storable);
        Self {
            row_key: &entry.key,
            request_id: text(&entry.request_id),
            correlation_id: text(&entry.correlation_id),
            tenant_id: text(&entry.tenant_id),
            method: storable(&entry.method),
            path: storable(&entry.path),
            request_body: text(&entry.request_body),
            status: i32::from(entry.status),
            error_code: text(&entry.error_code),
            duration_ms: entry.duration_ms,
            created_at: entry.created_at.naive_utc(),
        }
    }
}

/// `text` as a PostgreSQL `TEXT` value can hold it: NUL (U+0000) replaced by U+FFFD, the
/// character that already stands for bytes a body could not decode. PostgreSQL refuses NUL
/// in text ("invalid byte sequence for encoding UTF8: 0x00"), so one such request would
/// otherwise fail the whole batch of rows it was written with.
pub(crate) fn storable(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}
