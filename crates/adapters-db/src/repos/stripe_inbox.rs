//! The inbox of Stripe's events, one portable statement per operation. Receiving is an
//! `INSERT … ON CONFLICT DO NOTHING` on the event id, so a redelivery (or a concurrent one)
//! stores nothing; settling and requeuing are one `UPDATE` each whose `WHERE` names the
//! status they leave, so a second holder's late write changes nothing.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onboarding_domain::model::{EventStatus, EventSubject, ReceivedEvent, StripeEventId};
use onboarding_domain::ports::{
    EventRecord, InboxCounts, PendingEvent, RepoError, Settlement, StripeInbox,
};

use super::stored_error;
use crate::dispatch::with_conn;
use crate::json::moves_to_json;
use crate::pool::Database;
use crate::rows::{EventRow, NewEventRow, PendingEventRow, storable};
use crate::schema::stripe_events as ev;

const PENDING: EventStatus = EventStatus::Pending;
const FAILED: EventStatus = EventStatus::Failed;

fn ids(ids: &[StripeEventId]) -> Vec<&str> {
    ids.iter().map(StripeEventId::as_str).collect()
}

fn limit(limit: u32) -> i64 {
    i64::from(limit)
}

#[async_trait]
impl StripeInbox for Database {
    async fn receive(&self, event: &ReceivedEvent) -> Result<bool, RepoError> {
        let received_at = event.received_at.naive_utc();
        // An event that starts settled (ignored, or failed at once) was processed on arrival.
        let processed_at = (event.status != EventStatus::Pending).then_some(received_at);
        let row = NewEventRow {
            event_id: event.id.as_str(),
            event_type: storable(&event.event_type),
            object_id: storable(&event.object_id),
            livemode: i32::from(event.livemode),
            stripe_created_at: event.created.map(|at| at.naive_utc()),
            // A NUL would make PostgreSQL refuse the row; a body that carried one is not
            // valid JSON anyway.
            payload: storable(&event.payload),
            status: event.status.as_str(),
            attempts: 0,
            received_at,
            next_attempt_at: received_at,
            processed_at,
            error: event.error.as_deref().map(stored_error),
        };
        let inserted = with_conn!(self.pool, |conn| {
            diesel::insert_into(ev::table)
                .values(&row)
                .on_conflict(ev::event_id)
                .do_nothing()
                .execute(conn)
                .await
        })?;
        Ok(inserted == 1)
    }

    async fn find(&self, id: &StripeEventId) -> Result<Option<EventRecord>, RepoError> {
        let row = with_conn!(self.pool, |conn| {
            ev::table
                .find(id.as_str())
                .select(EventRow::as_select())
                .first(conn)
                .await
                .optional()
        })?;
        row.map(EventRecord::try_from).transpose()
    }

    async fn due_subjects(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<EventSubject>, RepoError> {
        let now = now.naive_utc();
        let limit = self::limit(limit);
        let object_ids: Vec<String> = with_conn!(self.pool, |conn| {
            ev::table
                .filter(ev::status.eq(PENDING.as_str()))
                .filter(ev::next_attempt_at.le(now))
                .group_by(ev::object_id)
                .select(ev::object_id)
                .order((min(ev::received_at).asc(), ev::object_id.asc()))
                .limit(limit)
                .load(conn)
                .await
        })?;
        // Events whose object id names no subject are stored failed, never pending; one
        // found here anyway (written by hand) is left for the failed list, not a panic.
        Ok(object_ids
            .iter()
            .filter_map(|object_id| {
                let subject = EventSubject::from_object_id(object_id);
                if subject.is_none() {
                    tracing::warn!(%object_id, "pending Stripe events about an unknown kind of object");
                }
                subject
            })
            .collect())
    }

    async fn pending(&self, subject: &EventSubject) -> Result<Vec<PendingEvent>, RepoError> {
        let rows = with_conn!(self.pool, |conn| {
            ev::table
                .filter(ev::object_id.eq(subject.object_id()))
                .filter(ev::status.eq(PENDING.as_str()))
                .order((ev::received_at.asc(), ev::event_id.asc()))
                .select(PendingEventRow::as_select())
                .load(conn)
                .await
        })?;
        rows.into_iter().map(PendingEvent::try_from).collect()
    }

    async fn settle(
        &self,
        ids: &[StripeEventId],
        settlement: &Settlement,
    ) -> Result<(), RepoError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = self::ids(ids);
        match settlement {
            Settlement::Final {
                status,
                error,
                moves,
                at,
            } => {
                if *status == EventStatus::Pending {
                    return Err(RepoError::Unexpected(
                        "a final settlement cannot leave events pending".into(),
                    ));
                }
                let status = status.as_str();
                let error = error.as_deref().map(stored_error);
                let moves = moves_to_json(moves)?;
                let at = at.naive_utc();
                with_conn!(self.pool, |conn| {
                    diesel::update(ev::table)
                        .filter(ev::event_id.eq_any(&ids))
                        .filter(ev::status.eq(PENDING.as_str()))
                        .set((
                            ev::status.eq(status),
                            ev::error.eq(&error),
                            ev::moves.eq(&moves),
                            ev::processed_at.eq(at),
                            ev::attempts.eq(ev::attempts + 1),
                        ))
                        .execute(conn)
                        .await
                })?;
            }
            Settlement::Retry {
                error,
                next_attempt_at,
            } => {
                let error = stored_error(error);
                let next_attempt_at = next_attempt_at.naive_utc();
                with_conn!(self.pool, |conn| {
                    diesel::update(ev::table)
                        .filter(ev::event_id.eq_any(&ids))
                        .filter(ev::status.eq(PENDING.as_str()))
                        .set((
                            ev::error.eq(&error),
                            ev::next_attempt_at.eq(next_attempt_at),
                            ev::attempts.eq(ev::attempts + 1),
                        ))
                        .execute(conn)
                        .await
                })?;
            }
        }
        Ok(())
    }

    async fn failed<'a>(
        &self,
        after: Option<&'a StripeEventId>,
        limit: u32,
    ) -> Result<Vec<EventRecord>, RepoError> {
        // Keyset pagination on the event id: a page starts after the last id seen, so events
        // requeued or failed meanwhile are neither repeated nor shift the pages.
        let limit = self::limit(limit);
        let rows = with_conn!(self.pool, |conn| {
            let mut query = ev::table
                .filter(ev::status.eq(FAILED.as_str()))
                .order(ev::event_id.asc())
                .limit(limit)
                .select(EventRow::as_select())
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(ev::event_id.gt(after.as_str()));
            }
            query.load(conn).await
        })?;
        rows.into_iter().map(EventRecord::try_from).collect()
    }

    async fn requeue(&self, ids: &[StripeEventId], now: DateTime<Utc>) -> Result<(), RepoError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = self::ids(ids);
        let now = now.naive_utc();
        // The error stays until the next settlement overwrites it: until then it tells why
        // the event had failed.
        with_conn!(self.pool, |conn| {
            diesel::update(ev::table)
                .filter(ev::event_id.eq_any(&ids))
                .filter(ev::status.eq(FAILED.as_str()))
                .set((
                    ev::status.eq(PENDING.as_str()),
                    ev::attempts.eq(0),
                    ev::next_attempt_at.eq(now),
                    ev::processed_at.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)
                .await
        })?;
        Ok(())
    }

    async fn counts(&self) -> Result<InboxCounts, RepoError> {
        let rows: Vec<(String, i64)> = with_conn!(self.pool, |conn| {
            ev::table
                .filter(ev::status.eq_any([PENDING.as_str(), FAILED.as_str()]))
                .group_by(ev::status)
                .select((ev::status, count_star()))
                .load(conn)
                .await
        })?;
        let mut counts = InboxCounts::default();
        for (status, count) in rows {
            let count = u64::try_from(count)
                .map_err(|_| RepoError::Unexpected(format!("negative row count {count}")))?;
            match EventStatus::parse(&status) {
                Some(PENDING) => counts.pending = count,
                Some(FAILED) => counts.failed = count,
                _ => {}
            }
        }
        Ok(counts)
    }
}
