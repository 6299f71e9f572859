//! The rows of the lifecycle sync's tables: the Stripe event inbox and the applied state.

use std::borrow::Cow;

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use onboarding_domain::model::{
    AppliedState, AppliedStatus, EventStatus, OrgId, PlanCode, StripeEventId,
};
use onboarding_domain::ports::{EventRecord, PendingEvent, RepoError, SyncRecord};

use crate::error::bad_row;
use crate::json::{intent_from_json, moves_from_json};
use crate::schema::{stigg_sync_states, stripe_events};

use super::utc;

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
