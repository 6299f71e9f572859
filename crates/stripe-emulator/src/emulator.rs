//! The shared emulator state and the handle that tests, the admin routes, the API routes and
//! the delivery task use.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::changes::{AdminError, Change, NewCustomer, NewSubscription, SubscriptionChange};
use crate::config::{EmulatorConfig, RetryPolicy, WebhookEndpoint};
use crate::delivery::{self, Deliveries, DeliveryOutcome, DeliveryRecord, Job};
use crate::events::{Draft, Event};
use crate::faults::{ApiFault, DeliveryFault, Faults};
use crate::lifecycle::{self, Outcome};
use crate::store::{Collection, Store, new_id};

/// A cheap-to-clone handle on one emulator; every clone sees the same state.
#[derive(Clone, Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    api_key: String,
    api_version: String,
    retry: RetryPolicy,
    delivery_timeout: Duration,
    /// Wakes the delivery task when an attempt is queued.
    wakeup: Notify,
    state: Mutex<State>,
}

/// Everything that changes while the emulator serves. One lock guards it all, so that a change
/// and the events it records (with their place in the delivery queue) happen together; it is
/// never held across an `.await`.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) events: Collection<Event>,
    pub(crate) deliveries: Deliveries,
    pub(crate) faults: Faults,
    pub(crate) webhook: Option<WebhookEndpoint>,
    pub(crate) requests: Vec<ApiRequest>,
}

impl State {
    /// Records the event and, when an endpoint is set, queues its delivery (Stripe delivers an
    /// event only to the endpoints that existed when it happened).
    fn record(&mut self, draft: Draft, now: i64, api_version: &str) -> Value {
        let id = new_id("evt");
        let deliver = self.webhook.is_some();
        let event = Event::new(id.clone(), draft, now, api_version, u32::from(deliver));
        if deliver {
            let fault = self.faults.take_delivery(event.kind);
            self.deliveries.schedule(&event, fault);
        }
        let json = event.json.clone();
        self.events.insert(id, event);
        json
    }
}

/// One request received on the API routes (`/v1/…`), logged once answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRequest {
    /// The `Request-Id` it was answered with.
    pub request_id: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub api_key_valid: bool,
    pub stripe_version: Option<String>,
    pub status: u16,
    pub at: DateTime<Utc>,
}

impl Emulator {
    pub fn new(config: EmulatorConfig) -> Self {
        let state = State {
            webhook: config.webhook,
            ..State::default()
        };
        Self {
            shared: Arc::new(Shared {
                api_key: config.api_key,
                api_version: config.api_version,
                retry: config.retry,
                delivery_timeout: config.delivery_timeout,
                wakeup: Notify::new(),
                state: Mutex::new(state),
            }),
        }
    }

    /// Sets, replaces or (with `None`) removes the webhook endpoint. Attempts still to be made
    /// go to the new one; events recorded while none is set are never delivered.
    pub fn set_webhook(&self, endpoint: Option<WebhookEndpoint>) {
        self.lock().webhook = endpoint;
    }

    pub fn webhook_url(&self) -> Option<String> {
        self.lock()
            .webhook
            .as_ref()
            .map(|endpoint| endpoint.url.clone())
    }

    /// The account's default API version (events are rendered in it).
    pub fn api_version(&self) -> &str {
        &self.shared.api_version
    }

    pub fn create_customer(&self, new: NewCustomer) -> Result<Change, AdminError> {
        self.change(|store, now, _| lifecycle::create_customer(store, new, now))
    }

    pub fn delete_customer(&self, id: &str) -> Result<Change, AdminError> {
        self.change(|store, now, version| lifecycle::delete_customer(store, id, now, version))
    }

    pub fn create_subscription(&self, new: NewSubscription) -> Result<Change, AdminError> {
        self.change(|store, now, version| lifecycle::create_subscription(store, new, now, version))
    }

    pub fn change_subscription(
        &self,
        id: &str,
        change: SubscriptionChange,
    ) -> Result<Change, AdminError> {
        self.change(|store, now, version| {
            lifecycle::change_subscription(store, id, change, now, version)
        })
    }

    /// Cancels (when live) and forgets a subscription: reads answer 404 after.
    pub fn delete_subscription(&self, id: &str) -> Result<Change, AdminError> {
        self.change(|store, now, version| lifecycle::delete_subscription(store, id, now, version))
    }

    /// A customer as `GET /v1/customers/{id}` shows it (a stub once deleted).
    pub fn customer(&self, id: &str) -> Option<Value> {
        self.lock().store.customers.get(id).map(|c| c.to_json())
    }

    /// A subscription as `GET /v1/subscriptions/{id}` shows it in the default API version.
    pub fn subscription(&self, id: &str) -> Option<Value> {
        let state = self.lock();
        let subscription = state.store.subscriptions.get(id)?;
        Some(subscription.to_json(&self.shared.api_version))
    }

    /// Every event recorded, oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.lock().events.iter().map(|e| e.json.clone()).collect()
    }

    /// Every delivery attempt (and dropped delivery), in the order they ended.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.lock().deliveries.log.clone()
    }

    /// Every request answered on the API routes, in the order answered.
    pub fn requests(&self) -> Vec<ApiRequest> {
        self.lock().requests.clone()
    }

    /// Queues an API fault behind those already queued; one with `times == 0` is dropped.
    pub fn push_api_fault(&self, fault: ApiFault) {
        if fault.scope.times > 0 {
            self.lock().faults.api.push_back(fault);
        }
    }

    /// Queues a delivery fault behind those already queued; one with `times == 0` is dropped.
    pub fn push_delivery_fault(&self, fault: DeliveryFault) {
        if fault.times > 0 {
            self.lock().faults.delivery.push_back(fault);
        }
    }

    /// Faults not used up yet, with their remaining `times`.
    pub fn pending_faults(&self) -> (Vec<ApiFault>, Vec<DeliveryFault>) {
        let state = self.lock();
        let faults = &state.faults;
        (
            faults.api.iter().cloned().collect(),
            faults.delivery.iter().cloned().collect(),
        )
    }

    pub fn clear_faults(&self) {
        self.lock().faults = Faults::default();
    }

    /// Waits until no delivery attempt is queued or under way (retries included; events held
    /// by an out-of-order fault excluded). `false` when `timeout` passed first.
    pub async fn wait_for_deliveries(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.lock().deliveries.is_idle() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Forgets customers, subscriptions, events, deliveries (attempts under way are not
    /// logged), faults and the request log. The key, the API version, the retry policy and the
    /// webhook endpoint stay.
    pub fn reset(&self) {
        let mut state = self.lock();
        state.store = Store::default();
        state.events = Collection::default();
        state.deliveries.reset();
        state.faults = Faults::default();
        state.requests.clear();
    }

    /// Mounts the API routes (`/v1/…`) and the admin routes (`/_emulator/…`), so that the
    /// emulator can be embedded in another actix app. Deliveries need
    /// [`run_deliveries`](Self::run_deliveries) running too.
    pub fn configure(&self, cfg: &mut actix_web::web::ServiceConfig) {
        crate::routes::configure(self, cfg);
    }

    /// Makes the webhook deliveries, forever: spawn it on a tokio runtime (a
    /// [`RunningEmulator`](crate::RunningEmulator) does). Events are queued whether or not it
    /// runs.
    pub async fn run_deliveries(self) {
        delivery::run(self).await;
    }

    /// Makes a change and records its events under one lock, so that events are numbered and
    /// queued in the order the changes happened.
    fn change(
        &self,
        make: impl FnOnce(&mut Store, i64, &str) -> Result<Outcome, AdminError>,
    ) -> Result<Change, AdminError> {
        let now = Utc::now().timestamp();
        let version = self.shared.api_version.as_str();
        let mut state = self.lock();
        let (object, drafts) = make(&mut state.store, now, version)?;
        let events = drafts
            .into_iter()
            .map(|draft| state.record(draft, now, version))
            .collect();
        drop(state);
        self.shared.wakeup.notify_one();
        Ok(Change { object, events })
    }

    pub(crate) fn finish_delivery(&self, job: Job, record: DeliveryRecord) {
        let delivered = record.outcome == DeliveryOutcome::Delivered;
        let retry_in = if delivered {
            None
        } else {
            self.shared.retry.delay_after(job.attempt(), job.age())
        };
        let event_id = job.event_id().to_owned();
        let mut state = self.lock();
        if state.deliveries.finish(job, record, retry_in)
            && delivered
            && let Some(event) = state.events.get_mut(&event_id)
        {
            event.delivered = true;
        }
    }

    pub(crate) async fn delivery_wakeup(&self) {
        self.shared.wakeup.notified().await;
    }

    pub(crate) fn delivery_timeout(&self) -> Duration {
        self.shared.delivery_timeout
    }

    pub(crate) fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// The state, even if a thread panicked while holding it: every update leaves it consistent
    /// enough for an emulator.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        emulator_kit::lock(&self.shared.state)
    }
}

impl Default for Emulator {
    fn default() -> Self {
        Self::new(EmulatorConfig::default())
    }
}
