//! Handle the inbox's pending events: per subject, under its lease, every pending event at
//! once (one re-read, one set of moves), then settle them: applied, failed for good, or
//! pending again after a backoff.
//!
//! Events are stored before Stripe gets its 200, and stay pending until a holder settles
//! them, so a stop or a crash at any point loses none: the next holder of the lease (here or
//! on another instance) finds them pending and handles them again; the sync's recorded
//! intent and stable idempotency keys make the repeat send nothing twice.

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::OperationContext;
use super::sync_subscription::{RetryRule, SyncFailed, SyncSubscription, Synced};
use crate::model::{CorrelationId, EventStatus, EventSubject, Lease, MoveRecord, StripeEventId};
use crate::ports::{Clock, LeaseStore, PendingEvent, RepoError, Settlement, StripeInbox};

/// When failed attempts are tried again, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first pause; it doubles with each attempt up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Transient failures are retried this long after the event arrived, then it fails.
    pub horizon: Duration,
    /// Events about a subscription the database does not know are retried this long.
    pub unknown_grace: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5 * 60),
            horizon: Duration::from_secs(72 * 3600),
            unknown_grace: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The pause after the `attempts`-th failed attempt.
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(20);
        self.first_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }
}

/// What handling a subject did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Another holder works on the subject now; its events wait for it or for the next turn.
    Busy,
    /// The run happened (with or without pending events).
    Ran(Report),
}

/// One run over a subject's pending events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub subject: EventSubject,
    /// The events settled by this run with [`Report::outcome`].
    pub events: Vec<PendingEvent>,
    /// Events that failed for good, past their retry limit, while the others are retried.
    pub gave_up: Vec<PendingEvent>,
    pub outcome: Outcome,
    /// The Stigg calls made, in order.
    pub moves: Vec<MoveRecord>,
    /// The call that failed, when one did.
    pub failed_call: Option<&'static str>,
    pub settled_at: DateTime<Utc>,
}

/// How a run ended for its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Failed(String),
    /// Pending again until `at`.
    Retrying {
        error: String,
        at: DateTime<Utc>,
    },
}

impl Outcome {
    /// The status the run's events have now.
    pub fn status(&self) -> EventStatus {
        match self {
            Self::Applied => EventStatus::Applied,
            Self::Failed(_) => EventStatus::Failed,
            Self::Retrying { .. } => EventStatus::Pending,
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Applied => None,
            Self::Failed(error) | Self::Retrying { error, .. } => Some(error),
        }
    }
}

/// The use case, holding its ports.
#[derive(Clone)]
pub struct HandleStripeEvents {
    inbox: Arc<dyn StripeInbox>,
    leases: Arc<dyn LeaseStore>,
    clock: Arc<dyn Clock>,
    sync: SyncSubscription,
    retry: RetryPolicy,
}

impl HandleStripeEvents {
    pub fn new(
        inbox: Arc<dyn StripeInbox>,
        leases: Arc<dyn LeaseStore>,
        clock: Arc<dyn Clock>,
        sync: SyncSubscription,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            inbox,
            leases,
            clock,
            sync,
            retry,
        }
    }

    /// The worker's turn on a subject with due events: skipped when another holder has it.
    pub async fn handle(&self, subject: &EventSubject) -> Result<Handled, RepoError> {
        let Some(lease) = self.take(subject).await? else {
            return Ok(Handled::Busy);
        };
        let outcome = self.handle_held(&lease, subject, false).await;
        self.release(&lease).await;
        outcome.map(Handled::Ran)
    }

    /// Syncs a subject now, pending events or not (the CLI), waiting up to `wait` for another
    /// holder to finish.
    pub async fn sync_now(
        &self,
        subject: &EventSubject,
        wait: Duration,
    ) -> Result<Handled, RepoError> {
        let give_up = self.clock.monotonic() + wait;
        let mut pause = Duration::from_millis(20);
        loop {
            if let Some(lease) = self.take(subject).await? {
                let outcome = self.handle_held(&lease, subject, true).await;
                self.release(&lease).await;
                return outcome.map(Handled::Ran);
            }
            if self.clock.monotonic() + pause >= give_up {
                return Ok(Handled::Busy);
            }
            self.clock.sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    async fn take(&self, subject: &EventSubject) -> Result<Option<Lease>, RepoError> {
        self.leases
            .try_take(
                &subject.lease_key(),
                self.clock.now(),
                self.sync.lease_ttl(),
            )
            .await
    }

    async fn handle_held(
        &self,
        lease: &Lease,
        subject: &EventSubject,
        even_without_events: bool,
    ) -> Result<Report, RepoError> {
        // Read under the lease: a holder before us settled what it handled.
        let events = self.inbox.pending(subject).await?;
        if events.is_empty() && !even_without_events {
            return Ok(self.report(subject, events, Ok(Synced::default())));
        }
        let latest = events.last().map(|event| event.id.clone());
        let ctx = OperationContext {
            correlation_id: correlation_id(latest.as_ref().map(|id| id.as_str()), subject),
            tenant_id: None,
        };
        let result = match subject {
            EventSubject::Subscription(id) => {
                self.sync
                    .subscription(lease, id, latest.as_ref(), &ctx)
                    .await
            }
            EventSubject::Customer(id) => self.sync.customer(lease, id, &ctx).await,
        };
        let report = self.report(subject, events, result);
        let ids = |events: &[PendingEvent]| -> Vec<StripeEventId> {
            events.iter().map(|e| e.id.clone()).collect()
        };
        if !report.events.is_empty() {
            self.inbox
                .settle(&ids(&report.events), &settlement(&report))
                .await?;
        }
        if !report.gave_up.is_empty()
            && let Some(error) = report.outcome.error()
        {
            let failed = Settlement::Final {
                status: EventStatus::Failed,
                error: Some(error.to_owned()),
                moves: report.moves.clone(),
                at: report.settled_at,
            };
            self.inbox.settle(&ids(&report.gave_up), &failed).await?;
        }
        Ok(report)
    }

    fn report(
        &self,
        subject: &EventSubject,
        events: Vec<PendingEvent>,
        result: Result<Synced, SyncFailed>,
    ) -> Report {
        let now = self.clock.now();
        let (outcome, moves, failed_call, gave_up, events) = match result {
            Ok(synced) => (Outcome::Applied, synced.moves, None, Vec::new(), events),
            Err(failed) => {
                let (outcome, gave_up, events) = self.after_failure(&failed, events, now);
                (outcome, failed.moves, failed.failed_call, gave_up, events)
            }
        };
        Report {
            subject: subject.clone(),
            events,
            gave_up,
            outcome,
            moves,
            failed_call,
            settled_at: now,
        }
    }

    /// Retry later, or give up: decided by the failure and, per event, by how long it has
    /// waited. Events past their limit fail (the second list) while newer ones of the same
    /// subject are tried again.
    fn after_failure(
        &self,
        failed: &SyncFailed,
        events: Vec<PendingEvent>,
        now: DateTime<Utc>,
    ) -> (Outcome, Vec<PendingEvent>, Vec<PendingEvent>) {
        let error = failed.error.to_string();
        let limit = match failed.error.retry_rule() {
            RetryRule::Never => return (Outcome::Failed(error), Vec::new(), events),
            RetryRule::Backoff => self.retry.horizon,
            RetryRule::WithinGrace => self.retry.unknown_grace,
        };
        let attempts = events.iter().map(|e| e.attempts).max().unwrap_or(0) + 1;
        let at = later(now, self.retry.delay(attempts));
        let (retried, gave_up): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|event| at <= later(event.received_at, limit));
        if retried.is_empty() {
            return (Outcome::Failed(error), Vec::new(), gave_up);
        }
        (Outcome::Retrying { error, at }, gave_up, retried)
    }

    async fn release(&self, lease: &Lease) {
        super::lease_release::release(self.leases.as_ref(), lease).await;
    }
}

fn settlement(report: &Report) -> Settlement {
    match &report.outcome {
        Outcome::Retrying { error, at } => Settlement::Retry {
            error: error.clone(),
            next_attempt_at: *at,
        },
        outcome => Settlement::Final {
            status: outcome.status(),
            error: outcome.error().map(str::to_owned),
            moves: report.moves.clone(),
            at: report.settled_at,
        },
    }
}

/// The latest event's id ties the run's calls together; without an event (the CLI), the
/// subject's id does.
fn correlation_id(event: Option<&str>, subject: &EventSubject) -> CorrelationId {
    let subject_id = format!("sync:{}", subject.object_id());
    [event, Some(subject_id.as_str()), Some("stripe-sync")]
        .into_iter()
        .flatten()
        .find_map(|raw| CorrelationId::parse(raw).ok())
        .unwrap_or_else(|| unreachable!("'stripe-sync' is a valid correlation id"))
}

/// `at + duration`, saturating: an absurd setting never overflows the worker.
fn later(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
