use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepoError;
use crate::model::{EventStatus, EventSubject, MoveRecord, ReceivedEvent, StripeEventId};

/// A stored event, as the read route and the CLI show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub id: StripeEventId,
    pub event_type: String,
    pub object_id: String,
    pub status: EventStatus,
    /// Handling attempts so far.
    pub attempts: u32,
    pub received_at: DateTime<Utc>,
    /// When it ended `applied`, `ignored` or `failed`.
    pub processed_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// The Stigg calls its handling made.
    pub moves: Vec<MoveRecord>,
}

/// An event waiting to be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub id: StripeEventId,
    pub event_type: String,
    pub received_at: DateTime<Utc>,
    pub attempts: u32,
}

/// How a handling attempt ended for the events it covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Done: `applied` (with the moves made), or `failed` for good (with the reason).
    Final {
        status: EventStatus,
        error: Option<String>,
        moves: Vec<MoveRecord>,
        at: DateTime<Utc>,
    },
    /// Still pending: tried again at `next_attempt_at`; the reason is kept.
    Retry {
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
}

/// How many events wait, and how many were given up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxCounts {
    pub pending: u64,
    pub failed: u64,
}

/// The durable inbox of Stripe's webhook events: stored once (the event id is the key)
/// before Stripe gets its 200, then handled in the background until each ends `applied`,
/// `ignored` or `failed`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StripeInbox: Send + Sync {
    /// Stores the event in one statement. `false` when its id was stored before (nothing
    /// is changed then).
    async fn receive(&self, event: &ReceivedEvent) -> Result<bool, RepoError>;

    async fn find(&self, id: &StripeEventId) -> Result<Option<EventRecord>, RepoError>;

    /// Subjects with at least one pending event due at `now`, the longest waiting first,
    /// at most `limit`.
    async fn due_subjects(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<EventSubject>, RepoError>;

    /// Every pending event about `subject`, due or not (they are handled together), oldest
    /// first.
    async fn pending(&self, subject: &EventSubject) -> Result<Vec<PendingEvent>, RepoError>;

    /// Ends or postpones an attempt for `ids`, counting one more attempt each. Events no
    /// longer pending (settled by another holder meanwhile) are left alone.
    async fn settle(&self, ids: &[StripeEventId], settlement: &Settlement)
    -> Result<(), RepoError>;

    /// Failed events, oldest first, after `after` (a cursor: the last id of the previous
    /// page), at most `limit`.
    async fn failed<'a>(
        &self,
        after: Option<&'a StripeEventId>,
        limit: u32,
    ) -> Result<Vec<EventRecord>, RepoError>;

    /// Makes failed events pending again, due now and with their attempts reset, so the
    /// worker (or the caller) handles them again. Only those still failed change.
    async fn requeue(&self, ids: &[StripeEventId], now: DateTime<Utc>) -> Result<(), RepoError>;

    async fn counts(&self) -> Result<InboxCounts, RepoError>;
}
