//! The lifecycle sync's worker inside `serve`: it takes the subjects with due events from the
//! inbox, a few at a time, and handles each under its lease (on any number of instances
//! sharing the database, one holder per subject). Woken at once by the webhook route on this
//! instance; polls for the others' events and for retries that came due.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use onboarding_domain::model::EventStatus;
use onboarding_domain::ports::StripeInbox;
use onboarding_domain::use_cases::StopSignal;
use onboarding_domain::use_cases::handle_stripe_events::{
    HandleStripeEvents, Handled, Outcome, Report,
};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::{BackgroundTasks, StopFlag};
use crate::metrics::Metrics;

/// Subjects handled at once. Each holds a database connection only between statements and
/// waits mostly on Stripe and Stigg, so a few run side by side.
const CONCURRENCY: usize = 8;
/// Subjects taken from the inbox per turn.
const BATCH: u32 = 64;
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
        let mut last_counts = tokio::time::Instant::now() - COUNTS_EVERY;
        while !stop.is_stopped() {
            if last_counts.elapsed() >= COUNTS_EVERY {
                self.count().await;
                last_counts = tokio::time::Instant::now();
            }
            let progressed = match self.inbox.due_subjects(Utc::now(), BATCH).await {
                Ok(subjects) if !subjects.is_empty() => self.handle_all(subjects, &stop).await,
                Ok(_) => false,
                Err(error) => {
                    warn!(%error, "cannot read the Stripe event inbox; retrying");
                    false
                }
            };
            if !progressed {
                tokio::select! {
                    () = self.wakeup.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                    () = stop.stopped() => {}
                }
            }
        }
        info!("Stripe sync worker stopped");
    }

    /// Handles `subjects`; true when at least one ran (the inbox may hold more at once).
    async fn handle_all(
        &self,
        subjects: Vec<onboarding_domain::model::EventSubject>,
        stop: &StopFlag,
    ) -> bool {
        let mut ran = false;
        let mut results = futures::stream::iter(subjects)
            .take_while(|_| std::future::ready(!stop.is_stopped()))
            .map(|subject| async move { (self.events.handle(&subject).await, subject) })
            .buffer_unordered(CONCURRENCY);
        while let Some((result, subject)) = results.next().await {
            match result {
                Ok(Handled::Ran(report)) => {
                    ran |= !report.events.is_empty();
                    self.observe(&report);
                }
                Ok(Handled::Busy) => {}
                Err(error) => warn!(%subject, %error, "cannot handle the subject's events"),
            }
        }
        ran
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
