//! Webhook deliveries: a queue of attempts ordered by when they are due, worked by one task
//! that signs each attempt and POSTs it, retrying failures with backoff as Stripe does.
//!
//! First attempts go out in the order the events were recorded; a failed delivery waits for
//! its retry while later events go ahead, so a client sees Stripe's lack of ordering whenever
//! it fails a delivery.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::web::Bytes;
use chrono::{DateTime, Utc};
use onboarding_adapters_stripe::sign;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use serde::Serialize;
use tokio::time::Instant;

use crate::config::WebhookEndpoint;
use crate::emulator::Emulator;
use crate::events::Event;
use crate::faults::DeliveryFaultAction;

/// One delivery attempt, or a fault's decision to make none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub event_id: String,
    pub event_type: String,
    /// 1 for a delivery's first attempt, counting up through its retries.
    pub attempt: u32,
    pub outcome: DeliveryOutcome,
    /// The status the endpoint answered, when it answered.
    pub status: Option<u16>,
    /// Why no status came back (connection refused, timeout, no endpoint set).
    pub error: Option<String>,
    /// Whether a further attempt is scheduled.
    pub will_retry: bool,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// Answered 2xx.
    Delivered,
    /// Answered another status.
    Failed,
    /// No answer: no connection, a timeout or no endpoint.
    Unreachable,
    /// Not sent: a [`DeliveryFaultAction::Drop`] fault.
    Dropped,
}

/// An attempt waiting to be made.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    event_id: String,
    event_type: &'static str,
    payload: Bytes,
    attempt: u32,
    created: Instant,
    /// Position in the queue: when due, then the order of scheduling.
    key: (Instant, u64),
    /// The [`Deliveries`] it belongs to; an attempt that ends after a reset is forgotten.
    generation: u64,
}

/// The delivery queue and log.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    queue: BTreeMap<(Instant, u64), Job>,
    /// Events held back by an out-of-order fault, released after the next first attempt.
    held: Vec<Job>,
    in_flight: usize,
    next_number: u64,
    pub(crate) generation: u64,
    pub(crate) log: Vec<DeliveryRecord>,
}

pub(crate) enum Next {
    Send(Job),
    WaitUntil(Instant),
    Idle,
}

impl Deliveries {
    /// Queues the first delivery of `event`, as `fault` (if any) dictates.
    pub(crate) fn schedule(&mut self, event: &Event, fault: Option<DeliveryFaultAction>) {
        match fault {
            None => {
                let job = self.first_attempt(event);
                self.push(job);
            }
            Some(DeliveryFaultAction::Twice) => {
                for _ in 0..2 {
                    let job = self.first_attempt(event);
                    self.push(job);
                }
            }
            Some(DeliveryFaultAction::OutOfOrder) => {
                let job = self.first_attempt(event);
                self.held.push(job);
            }
            Some(DeliveryFaultAction::Drop) => self.log.push(DeliveryRecord {
                event_id: event.id.clone(),
                event_type: event.kind.to_owned(),
                attempt: 1,
                outcome: DeliveryOutcome::Dropped,
                status: None,
                error: None,
                will_retry: false,
                at: Utc::now(),
            }),
        }
    }

    fn first_attempt(&mut self, event: &Event) -> Job {
        let now = Instant::now();
        self.next_number += 1;
        Job {
            event_id: event.id.clone(),
            event_type: event.kind,
            payload: event.payload.clone(),
            attempt: 1,
            created: now,
            key: (now, self.next_number),
            generation: self.generation,
        }
    }

    fn push(&mut self, job: Job) {
        self.queue.insert(job.key, job);
    }

    /// The attempt to make now, or when the next one is due.
    pub(crate) fn next(&mut self, now: Instant) -> Next {
        let Some(entry) = self.queue.first_entry() else {
            return Next::Idle;
        };
        if entry.key().0 > now {
            return Next::WaitUntil(entry.key().0);
        }
        self.in_flight += 1;
        Next::Send(entry.remove())
    }

    /// Records how an attempt went, schedules its retry after `retry_in`, and releases held
    /// events once another event's first attempt was made. An attempt begun before a reset
    /// changes nothing. Answers whether the attempt counted.
    pub(crate) fn finish(
        &mut self,
        mut job: Job,
        mut record: DeliveryRecord,
        retry_in: Option<Duration>,
    ) -> bool {
        if job.generation != self.generation {
            return false;
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        let due = retry_in.and_then(|delay| Instant::now().checked_add(delay));
        record.will_retry = due.is_some();
        self.log.push(record);
        if job.attempt == 1 {
            // Only an event recorded after the held one releases it (not one whose attempt was
            // under way when it was held). Released with their original place, so they go
            // before anything queued since.
            let (released, still_held) = std::mem::take(&mut self.held)
                .into_iter()
                .partition(|held| held.key.1 < job.key.1);
            self.held = still_held;
            for held in released {
                self.push(held);
            }
        }
        if let Some(due) = due {
            self.next_number += 1;
            job.attempt += 1;
            job.key = (due, self.next_number);
            self.push(job);
        }
        true
    }

    /// No attempt queued or under way (events held by a fault do not count).
    pub(crate) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight == 0
    }

    /// Forgets everything, and makes attempts under way forget themselves when they end.
    pub(crate) fn reset(&mut self) {
        *self = Self {
            generation: self.generation + 1,
            ..Self::default()
        };
    }
}

/// Works the queue of `emulator` forever: what [`Emulator::run_deliveries`] runs.
pub(crate) async fn run(emulator: Emulator) {
    let client = match reqwest::Client::builder()
        .timeout(emulator.delivery_timeout())
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "Stripe emulator: no HTTP client, webhooks stay undelivered");
            return;
        }
    };
    loop {
        let next = emulator.lock().deliveries.next(Instant::now());
        match next {
            Next::Send(job) => {
                let endpoint = emulator.lock().webhook.clone();
                let record = attempt(&client, endpoint.as_ref(), &job).await;
                emulator.finish_delivery(job, record);
            }
            Next::WaitUntil(due) => {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = emulator.delivery_wakeup() => {}
                }
            }
            Next::Idle => emulator.delivery_wakeup().await,
        }
    }
}

/// Signs and POSTs one attempt, with a fresh timestamp as Stripe does on each retry.
async fn attempt(
    client: &reqwest::Client,
    endpoint: Option<&WebhookEndpoint>,
    job: &Job,
) -> DeliveryRecord {
    let (outcome, status, error) = match endpoint {
        None => (
            DeliveryOutcome::Unreachable,
            None,
            Some("no webhook endpoint is set".to_owned()),
        ),
        Some(endpoint) => {
            let signature = sign(&job.payload, &endpoint.secrets, Utc::now().timestamp());
            let sent = client
                .post(&endpoint.url)
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .header(USER_AGENT, "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
                .header("Stripe-Signature", signature)
                .body(job.payload.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => (
                    DeliveryOutcome::Delivered,
                    Some(response.status().as_u16()),
                    None,
                ),
                Ok(response) => (
                    DeliveryOutcome::Failed,
                    Some(response.status().as_u16()),
                    None,
                ),
                Err(error) => (DeliveryOutcome::Unreachable, None, Some(causes(&error))),
            }
        }
    };
    tracing::debug!(event = %job.event_id, attempt = job.attempt, ?outcome, ?status, "stripe emulator delivery");
    DeliveryRecord {
        event_id: job.event_id.clone(),
        event_type: job.event_type.to_owned(),
        attempt: job.attempt,
        outcome,
        status,
        error,
        will_retry: false,
        at: Utc::now(),
    }
}

/// The error with its causes ("error sending request …: connection refused"): reqwest's own
/// message alone does not say what went wrong.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Job {
    pub(crate) fn event_id(&self) -> &str {
        &self.event_id
    }

    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How long ago the event was recorded.
    pub(crate) fn age(&self) -> Duration {
        self.created.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Draft;

    fn event(id: &str) -> Event {
        let draft = Draft::new("customer.created", serde_json::json!({}));
        Event::new(id.to_owned(), draft, 0, "2024-06-20", 1)
    }

    fn record(job: &Job) -> DeliveryRecord {
        DeliveryRecord {
            event_id: job.event_id.clone(),
            event_type: job.event_type.to_owned(),
            attempt: job.attempt,
            outcome: DeliveryOutcome::Delivered,
            status: Some(200),
            error: None,
            will_retry: false,
            at: Utc::now(),
        }
    }

    /// Takes the next attempt due now and finishes it; its event id.
    fn deliver_next(deliveries: &mut Deliveries) -> Option<String> {
        let Next::Send(job) = deliveries.next(Instant::now()) else {
            return None;
        };
        let id = job.event_id.clone();
        let record = record(&job);
        deliveries.finish(job, record, None);
        Some(id)
    }

    #[test]
    fn a_held_event_waits_for_an_event_recorded_after_it() {
        let mut deliveries = Deliveries::default();
        deliveries.schedule(&event("evt_before"), None);
        let Next::Send(under_way) = deliveries.next(Instant::now()) else {
            panic!("the first event is due");
        };
        deliveries.schedule(&event("evt_held"), Some(DeliveryFaultAction::OutOfOrder));
        // An attempt that was under way when the event was held does not release it.
        let record = record(&under_way);
        assert!(deliveries.finish(under_way, record, None));
        assert!(deliveries.is_idle());
        assert_eq!(deliver_next(&mut deliveries), None);

        deliveries.schedule(&event("evt_next"), None);
        deliveries.schedule(&event("evt_after"), None);
        assert_eq!(deliver_next(&mut deliveries).as_deref(), Some("evt_next"));
        assert_eq!(deliver_next(&mut deliveries).as_deref(), Some("evt_held"));
        assert_eq!(deliver_next(&mut deliveries).as_deref(), Some("evt_after"));
    }

    #[test]
    fn a_retry_is_queued_behind_what_is_due_and_a_reset_forgets_attempts_under_way() {
        let mut deliveries = Deliveries::default();
        deliveries.schedule(&event("evt_a"), None);
        let Next::Send(job) = deliveries.next(Instant::now()) else {
            panic!("due");
        };
        let mut failed = record(&job);
        failed.outcome = DeliveryOutcome::Failed;
        deliveries.finish(job, failed, Some(Duration::from_secs(60)));
        assert_eq!(deliveries.log.last().map(|r| r.will_retry), Some(true));
        assert!(matches!(
            deliveries.next(Instant::now()),
            Next::WaitUntil(_)
        ));

        deliveries.schedule(&event("evt_b"), None);
        let Next::Send(job) = deliveries.next(Instant::now()) else {
            panic!("due");
        };
        assert_eq!(job.event_id, "evt_b");
        deliveries.reset();
        let record = record(&job);
        assert!(!deliveries.finish(job, record, None));
        assert!(deliveries.log.is_empty() && deliveries.is_idle());
    }
}
