//! The lifecycle sync's worker inside `serve`: it takes the subjects with due events from the
//! inbox, a few at a time, and handles each under its lease (on any number of instances
//! sharing the database, one holder per subject). Woken at once by the webhook route on this
//! instance; polls for the others' events and for retries that came due.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use onboarding_domain::model::EventStatus;
use onboarding_domain::ports::{RepoError, StripeInbox};
use onboarding_domain::use_cases::StopSignal;
use onboarding_domain::use_cases::handle_stripe_events::{
    HandleStripeEvents, Handled, Outcome, Report,
};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::{BackgroundTasks, StopFlag};
use crate::metrics::Metrics;

/// Subjects handled at once. Each holds a database connection only between statements and
/// waits mostly on Stripe and Stigg (a few hundred milliseconds a run), so at 32 the worker
/// keeps up with well over 50 events a second.
const CONCURRENCY: usize = 32;
/// How often the inbox is polled when nothing woke the worker: events stored by other
/// instances, retries come due, subjects another holder had.
const POLL: Duration = Duration::from_millis(250);
/// How often the pending and failed counts are read for the metrics.
const COUNTS_EVERY: Duration = Duration::from_secs(10);

/// What the worker works with.
pub struct SyncWorker {
    pub events: HandleStripeEvents,
    pub inbox: Arc<dyn StripeInbox>,
    pub wakeup: Arc<Notify>,
    pub metrics: Arc<Metrics>,
}

impl SyncWorker {
    /// Runs the worker among `serve`'s background tasks. On a stop it finishes the subjects
    /// in hand and takes no more; the rest stay pending for the next start or another
    /// instance.
    pub fn start(self, background: &mut BackgroundTasks) {
        background.spawn("stripe-sync", move |stop| self.run(stop));
    }

    async fn run(self, stop: StopFlag) {
        info!("Stripe sync worker started");
        let worker = Arc::new(self);
        // Subjects in hand, by object id: a slow one (Stripe or Stigg at the end of their
        // retries) never holds back the others, and no subject runs twice here at once.
        let mut running: JoinSet<(String, Result<Handled, RepoError>)> = JoinSet::new();
        let mut in_hand: HashSet<String> = HashSet::new();
        // Subjects another holder had: left until the next poll, not asked for again at once.
        let mut resting: HashSet<String> = HashSet::new();
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_counts = tokio::time::Instant::now() - COUNTS_EVERY;
        loop {
            if last_counts.elapsed() >= COUNTS_EVERY {
                worker.count().await;
                last_counts = tokio::time::Instant::now();
            }
            let room = CONCURRENCY.saturating_sub(running.len());
            if !stop.is_stopped() && room > 0 {
                worker
                    .take_more(room, &mut running, &mut in_hand, &resting)
                    .await;
            }
            if stop.is_stopped() && running.is_empty() {
                break;
            }
            tokio::select! {
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Some(busy) = worker.finished(done, &mut in_hand) {
                        resting.insert(busy);
                    }
                }
                () = worker.wakeup.notified(), if !stop.is_stopped() => {}
                _ = poll.tick(), if !stop.is_stopped() => resting.clear(),
                () = stop.stopped(), if !stop.is_stopped() => {}
            }
        }
        info!("Stripe sync worker stopped");
    }

    /// Starts up to `room` subjects with due events that are not in hand already.
    async fn take_more(
        self: &Arc<Self>,
        room: usize,
        running: &mut JoinSet<(String, Result<Handled, RepoError>)>,
        in_hand: &mut HashSet<String>,
        resting: &HashSet<String>,
    ) {
        let limit = u32::try_from(room + in_hand.len() + resting.len()).unwrap_or(u32::MAX);
        let subjects = match self.inbox.due_subjects(Utc::now(), limit).await {
            Ok(subjects) => subjects,
            Err(error) => {
                warn!(%error, "cannot read the Stripe event inbox; retrying");
                return;
            }
        };
        for subject in subjects {
            let key = subject.object_id().to_owned();
            if running.len() >= CONCURRENCY
                || resting.contains(&key)
                || !in_hand.insert(key.clone())
            {
                continue;
            }
            let worker = Arc::clone(self);
            running.spawn(async move { (key, worker.events.handle(&subject).await) });
        }
    }

    /// Accounts for a finished run; the subject's key when it should rest until the next poll
    /// (another holder had it, or the database failed).
    fn finished(
        &self,
        done: Result<(String, Result<Handled, RepoError>), tokio::task::JoinError>,
        in_hand: &mut HashSet<String>,
    ) -> Option<String> {
        let (key, result) = match done {
            Ok(done) => done,
            // A panicking run is a bug; its subject stays pending. Its key stays in hand, so
            // it is not taken again by this worker until a restart.
            Err(error) => {
                warn!(%error, "a sync run failed");
                return None;
            }
        };
        in_hand.remove(&key);
        match result {
            Ok(Handled::Ran(report)) => self.observe(&report),
            Ok(Handled::Busy) => return Some(key),
            Err(error) => {
                warn!(subject = %key, %error, "cannot handle the subject's events");
                return Some(key);
            }
        }
        None
    }

    fn observe(&self, report: &Report) {
        for call in &report.moves {
            self.metrics.stigg_move(&call.call, true);
        }
        if let Some(call) = report.failed_call {
            self.metrics.stigg_move(call, false);
        }
        let outcome = match &report.outcome {
            Outcome::Applied => EventStatus::Applied.as_str(),
            Outcome::Failed(_) => EventStatus::Failed.as_str(),
            Outcome::Retrying { .. } => "retried",
        };
        for event in &report.gave_up {
            self.metrics
                .stripe_event(Some(&event.event_type), EventStatus::Failed.as_str());
        }
        for event in &report.events {
            self.metrics.stripe_event(Some(&event.event_type), outcome);
            if report.outcome == Outcome::Applied {
                let lag = (report.settled_at - event.received_at)
                    .to_std()
                    .unwrap_or_default();
                self.metrics.sync_lag(lag);
            }
        }
        match &report.outcome {
            Outcome::Applied => {
                info!(subject = %report.subject, events = report.events.len(), moves = report.moves.len(), "Stripe events applied")
            }
            Outcome::Failed(error) => {
                warn!(subject = %report.subject, events = report.events.len(), %error, "Stripe events failed")
            }
            Outcome::Retrying { error, at } => {
                info!(subject = %report.subject, events = report.events.len(), %error, retry_at = %at, "Stripe events will be retried")
            }
        }
    }

    async fn count(&self) {
        match self.inbox.counts().await {
            Ok(counts) => self.metrics.inbox_counts(counts.pending, counts.failed),
            Err(error) => warn!(%error, "cannot count the Stripe event inbox"),
        }
    }
}
