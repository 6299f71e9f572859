//! Row structs: what diesel reads and writes. They never leave the crate; the repositories
//! turn them into domain types, checking the columns other systems write.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use onboarding_domain::model::{
    AppliedState, AppliedStatus, EventStatus, OrgId, Organization, PlanCode, ProvisionedCustomer,
    ProvisionedSubscription, Stored, StripeCustomerId, StripeEventId, StripeSubscriptionId,
    Subscription, SubscriptionStatus,
};
use onboarding_domain::ports::{DebugLogEntry, EventRecord, PendingEvent, RepoError, SyncRecord};

use crate::error::bad_row;
use crate::json::{intent_from_json, moves_from_json};
use crate::schema::{
    debug_logs, leases, organizations, stigg_customer_provisions, stigg_subscription_provisions,
    stigg_sync_states, stripe_events, subscriptions,
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

/// An event as received.
#[derive(Debug, Insertable)]
#[diesel(table_name = stripe_events)]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct NewEventRow<'a> {
    pub event_id: &'a str,
    pub event_type: Cow<'a, str>,
    pub object_id: Cow<'a, str>,
    pub livemode: i32,
    pub stripe_created_at: Option<NaiveDateTime>,
    pub payload: Cow<'a, str>,
    pub status: &'static str,
    pub attempts: i32,
    pub received_at: NaiveDateTime,
    pub next_attempt_at: NaiveDateTime,
    pub processed_at: Option<NaiveDateTime>,
    pub error: Option<Cow<'a, str>>,
}

/// An event as the read route and the CLI show it.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = stripe_events, check_for_backend(Sqlite, Pg))]
pub(crate) struct EventRow {
    pub event_id: String,
    pub event_type: String,
    pub object_id: String,
    pub status: String,
    pub attempts: i32,
    pub received_at: NaiveDateTime,
    pub processed_at: Option<NaiveDateTime>,
    pub error: Option<String>,
    pub moves: Option<String>,
}

const EVENTS: &str = "stripe_events";

fn event_id(raw: &str) -> Result<StripeEventId, RepoError> {
    StripeEventId::parse(raw).map_err(|e| bad_row(EVENTS, "event_id", raw, e))
}

fn attempts(raw: i32) -> Result<u32, RepoError> {
    u32::try_from(raw).map_err(|e| bad_row(EVENTS, "attempts", &raw.to_string(), e))
}

impl TryFrom<EventRow> for EventRecord {
    type Error = RepoError;

    fn try_from(row: EventRow) -> Result<Self, RepoError> {
        let status = EventStatus::parse(&row.status)
            .ok_or_else(|| bad_row(EVENTS, "status", &row.status, "not an event status"))?;
        Ok(Self {
            id: event_id(&row.event_id)?,
            event_type: row.event_type,
            object_id: row.object_id,
            status,
            attempts: attempts(row.attempts)?,
            received_at: utc(row.received_at),
            processed_at: row.processed_at.map(utc),
            error: row.error,
            moves: moves_from_json(row.moves.as_deref())?,
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = stripe_events, check_for_backend(Sqlite, Pg))]
pub(crate) struct PendingEventRow {
    pub event_id: String,
    pub event_type: String,
    pub received_at: NaiveDateTime,
    pub attempts: i32,
}

impl TryFrom<PendingEventRow> for PendingEvent {
    type Error = RepoError;

    fn try_from(row: PendingEventRow) -> Result<Self, RepoError> {
        Ok(Self {
            id: event_id(&row.event_id)?,
            event_type: row.event_type,
            received_at: utc(row.received_at),
            attempts: attempts(row.attempts)?,
        })
    }
}

/// A sync state as stored.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = stigg_sync_states, check_for_backend(Sqlite, Pg))]
pub(crate) struct SyncStateRow {
    pub organization_id: String,
    pub stigg_customer_id: Option<String>,
    pub stigg_subscription_id: Option<String>,
    pub plan_code: Option<String>,
    pub status: Option<String>,
    pub trial_ends_at: Option<NaiveDateTime>,
    pub cancellation_date: Option<NaiveDateTime>,
    pub moves_applied: i64,
    pub intent: Option<String>,
    pub last_synced_at: Option<NaiveDateTime>,
    pub last_event_id: Option<String>,
    pub last_error: Option<String>,
}

const SYNC_STATES: &str = "stigg_sync_states";

/// How [`AppliedStatus`] is stored.
pub(crate) fn applied_status_str(status: AppliedStatus) -> &'static str {
    match status {
        AppliedStatus::Active => "active",
        AppliedStatus::Canceled => "canceled",
    }
}

impl SyncStateRow {
    /// The state last applied: `None` until a move succeeded (its columns all NULL).
    fn applied(&self) -> Result<Option<AppliedState>, RepoError> {
        let (Some(stigg_subscription_id), Some(plan_code), Some(status)) =
            (&self.stigg_subscription_id, &self.plan_code, &self.status)
        else {
            return Ok(None);
        };
        let plan = PlanCode::parse(plan_code)
            .map_err(|e| bad_row(SYNC_STATES, "plan_code", plan_code, e))?;
        let status = [AppliedStatus::Active, AppliedStatus::Canceled]
            .into_iter()
            .find(|known| applied_status_str(*known) == status)
            .ok_or_else(|| bad_row(SYNC_STATES, "status", status, "not active or canceled"))?;
        let moves_applied = u64::try_from(self.moves_applied).map_err(|e| {
            bad_row(
                SYNC_STATES,
                "moves_applied",
                &self.moves_applied.to_string(),
                e,
            )
        })?;
        Ok(Some(AppliedState {
            stigg_subscription_id: stigg_subscription_id.clone(),
            plan,
            status,
            trial_end: self.trial_ends_at.map(utc),
            cancellation_date: self.cancellation_date.map(utc),
            moves_applied,
        }))
    }
}

impl TryFrom<SyncStateRow> for SyncRecord {
    type Error = RepoError;

    fn try_from(row: SyncStateRow) -> Result<Self, RepoError> {
        let org_id = OrgId::parse(&row.organization_id)
            .map_err(|e| bad_row(SYNC_STATES, "organization_id", &row.organization_id, e))?;
        Ok(Self {
            org_id,
            applied: row.applied()?,
            intent: row.intent.as_deref().map(intent_from_json).transpose()?,
        })
    }
}

/// The row an intent creates when the subscription has none yet.
#[derive(Debug, Insertable)]
#[diesel(table_name = stigg_sync_states)]
pub(crate) struct IntentRow<'a> {
    pub stripe_subscription_id: &'a str,
    pub organization_id: &'a str,
    pub intent: &'a str,
    pub updated_at: NaiveDateTime,
}

/// The applied state's columns, as one succeeded move leaves them.
#[derive(Debug, Insertable)]
#[diesel(table_name = stigg_sync_states)]
// `None` is NULL, and the same columns are written whichever `Option`s are set.
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct AppliedRow<'a> {
    pub stripe_subscription_id: &'a str,
    pub organization_id: &'a str,
    pub stigg_customer_id: &'a str,
    pub stigg_subscription_id: &'a str,
    pub plan_code: &'a str,
    pub status: &'static str,
    pub trial_ends_at: Option<NaiveDateTime>,
    pub cancellation_date: Option<NaiveDateTime>,
    pub moves_applied: i64,
    pub intent: Option<&'a str>,
    pub last_error: Option<&'a str>,
    pub updated_at: NaiveDateTime,
}

/// The end of a sync, on a subscription that may have no record yet.
#[derive(Debug, Insertable)]
#[diesel(table_name = stigg_sync_states)]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct OutcomeRow<'a> {
    pub stripe_subscription_id: &'a str,
    pub organization_id: &'a str,
    pub last_synced_at: NaiveDateTime,
    pub last_event_id: Option<&'a str>,
    pub last_error: Option<Cow<'a, str>>,
    pub updated_at: NaiveDateTime,
}
