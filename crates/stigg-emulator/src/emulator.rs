//! The shared emulator state and the handle that tests, the admin routes and the API routes use.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{EmulatorConfig, PlanSpec};
use crate::faults::Fault;
use crate::rate_limit::{RateLimit, RateLimiter};
use crate::reply::Reply;
use crate::store::Store;
use crate::view::SubscriptionView;

/// A cheap-to-clone handle on one emulator's state; every clone sees the same data.
#[derive(Clone, Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    api_key: String,
    plans: Vec<PlanSpec>,
    state: Mutex<State>,
}

/// Everything that changes while the emulator serves. One lock guards it all, so that
/// check-then-create (idempotency, duplicates, rate limits) is atomic; it is never held across
/// an `.await`.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) store: Store,
    /// `Idempotency-Key` -> the answer given the first time.
    pub(crate) idempotency: HashMap<String, Reply>,
    pub(crate) faults: VecDeque<Fault>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) limiter: RateLimiter,
    /// Entries are numbered so that a request's status can be filled in when it is answered,
    /// even if other requests were logged in between.
    log: Vec<(u64, LoggedRequest)>,
    next_log_number: u64,
}

impl State {
    pub(crate) fn log_request(&mut self, request: LoggedRequest) -> u64 {
        let number = self.next_log_number;
        self.next_log_number += 1;
        self.log.push((number, request));
        number
    }

    /// Sets the status of a logged request; a no-op if the log was reset meanwhile.
    pub(crate) fn set_logged_status(&mut self, number: u64, status: u16) {
        if let Some((_, request)) = self.log.iter_mut().rev().find(|(n, _)| *n == number) {
            request.status = status;
        }
    }
}

/// One request received on an API route, as the emulator saw it.
///
/// `body` is the JSON body, or the raw body as a JSON string when it is not JSON, or `None`
/// when empty. `status` is 0 while the request is being answered (e.g. during a delay fault)
/// and stays 0 for a [`Reset`](crate::FaultAction::Reset) fault, which sends no status.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub correlation_id: Option<String>,
    pub api_key_valid: bool,
    pub user_agent: Option<String>,
    pub body: Option<Value>,
    pub status: u16,
    pub at: DateTime<Utc>,
}

/// The kinds of entity the emulator creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EntityKind {
    Customer,
    Subscription,
}

impl Emulator {
    pub fn new(config: EmulatorConfig) -> Self {
        let state = State {
            rate_limit: config.rate_limit,
            ..State::default()
        };
        Self {
            shared: Arc::new(Shared {
                api_key: config.api_key,
                plans: config.plans,
                state: Mutex::new(state),
            }),
        }
    }

    /// Every request received on the API routes (not the admin routes), in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock()
            .log
            .iter()
            .map(|(_, request)| request.clone())
            .collect()
    }

    /// Customers in creation order, in Stigg's JSON shape.
    pub fn customers(&self) -> Vec<Value> {
        self.lock()
            .store
            .customers
            .iter()
            .map(|customer| customer.to_json())
            .collect()
    }

    /// Subscriptions in creation order, in Stigg's JSON shape.
    pub fn subscriptions(&self) -> Vec<Value> {
        let state = self.lock();
        state
            .store
            .subscriptions
            .iter()
            .map(|subscription| subscription.to_json())
            .collect()
    }

    /// The subscription `id`, whatever its status.
    pub fn subscription(&self, id: &str) -> Option<SubscriptionView> {
        self.lock()
            .store
            .subscriptions
            .get(id)
            .map(SubscriptionView::from)
    }

    /// The customer's subscription that has not ended, if any: a new subscription replaces
    /// it, a cancellation ends it.
    pub fn active_subscription(&self, customer_id: &str) -> Option<SubscriptionView> {
        self.lock()
            .store
            .active_of(customer_id)
            .map(SubscriptionView::from)
    }

    /// Whether the customer is archived; `None` for a customer never created.
    pub fn customer_archived(&self, customer_id: &str) -> Option<bool> {
        self.lock()
            .store
            .customers
            .get(customer_id)
            .map(|customer| customer.archived_at.is_some())
    }

    /// How many entities of this kind were created. Entities are never deleted (except by
    /// [`reset`](Self::reset)), so idempotent replays, 409s and `PAYMENT_REQUIRED` answers, which
    /// create nothing, leave it unchanged.
    pub fn created_count(&self, kind: EntityKind) -> usize {
        let state = self.lock();
        match kind {
            EntityKind::Customer => state.store.customers.len(),
            EntityKind::Subscription => state.store.subscriptions.len(),
        }
    }

    /// Queues a fault behind those already queued. A fault with `times == 0` applies to nothing
    /// and is dropped.
    pub fn push_fault(&self, fault: Fault) {
        if fault.scope.times > 0 {
            self.lock().faults.push_back(fault);
        }
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Faults still queued, with their remaining `times`.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.lock().faults.iter().cloned().collect()
    }

    /// Replaces the rate limit (`None` turns it off). Calls already counted stay counted.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.lock().rate_limit = limit;
    }

    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.lock().rate_limit.clone()
    }

    /// Forgets entities, idempotency keys, the request log, queued faults and rate-limit counts.
    /// The rate limit setting itself, the API key and the plan catalog stay.
    pub fn reset(&self) {
        let mut state = self.lock();
        *state = State {
            rate_limit: state.rate_limit.take(),
            ..State::default()
        };
    }

    /// Mounts the API routes (`/api/v1/...`) and the admin routes (`/_emulator/...`), so that
    /// the emulator can be embedded in another actix app.
    pub fn configure(&self, cfg: &mut actix_web::web::ServiceConfig) {
        crate::routes::configure(self, cfg);
    }

    pub(crate) fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    pub(crate) fn plans(&self) -> &[PlanSpec] {
        &self.shared.plans
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
