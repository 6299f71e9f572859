//! Scripted faults: API answers replaced or delayed, and webhook deliveries dropped, doubled
//! or reordered, so that a client's retries and its tolerance of Stripe's delivery semantics
//! can be exercised on demand.

use std::collections::VecDeque;

use emulator_kit::{FaultScope, Scoped, status_problem, take_first};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A fault on the next `times` API requests (`/v1/…`) matching `method` and `path_prefix`
/// (an unset field matches everything). Faults are used in the order they were pushed; one
/// request uses at most one.
///
/// JSON (camelCase): `{"method": "GET", "pathPrefix": "/v1/subscriptions", "times": 2,
/// "action": {"type": "status", "status": 503, "body": {…}}}` or
/// `{"action": {"type": "delay", "ms": 2000}}`; `times` defaults to 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiFault {
    #[serde(flatten)]
    pub scope: FaultScope,
    pub action: ApiFaultAction,
}

/// What an API fault does to the request it hits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApiFaultAction {
    /// Answer `status` instead, with `body` or else a Stripe error of the matching type.
    Status {
        status: u16,
        #[serde(default)]
        body: Option<Value>,
    },
    /// Wait `ms` milliseconds, then answer normally.
    Delay { ms: u64 },
}

impl ApiFault {
    /// Answer the next API request with `status` and Stripe's error body for it.
    pub fn status(status: u16) -> Self {
        Self::new(ApiFaultAction::Status { status, body: None })
    }

    /// Delay the next API request by `ms` milliseconds.
    pub fn delay(ms: u64) -> Self {
        Self::new(ApiFaultAction::Delay { ms })
    }

    fn new(action: ApiFaultAction) -> Self {
        Self {
            scope: FaultScope::default(),
            action,
        }
    }

    /// Why this fault cannot be applied, if it cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        self.scope.problem().or(match self.action {
            ApiFaultAction::Status { status, .. } => status_problem(status),
            ApiFaultAction::Delay { .. } => None,
        })
    }
}

impl Scoped for ApiFault {
    fn scope_mut(&mut self) -> &mut FaultScope {
        &mut self.scope
    }
}

/// A fault on the first delivery of the next `times` events of type `event_type` (any type when
/// unset). Retries of a failed delivery are never faulted: they are Stripe's own behaviour.
///
/// JSON (camelCase): `{"eventType": "customer.subscription.updated", "times": 1,
/// "action": "drop" | "twice" | "out_of_order"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryFault {
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default = "one")]
    pub times: u32,
    pub action: DeliveryFaultAction,
}

/// What a delivery fault does to the event it hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryFaultAction {
    /// Never deliver it (the event stays listed by `GET /v1/events`, as after a lost delivery).
    Drop,
    /// Deliver it twice, as two separate deliveries of the same event.
    Twice,
    /// Hold it back until the next event's first delivery was made, then deliver it.
    OutOfOrder,
}

impl DeliveryFault {
    pub fn new(action: DeliveryFaultAction) -> Self {
        Self {
            event_type: None,
            times: 1,
            action,
        }
    }

    pub fn on_event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }
}

fn one() -> u32 {
    1
}

/// The faults waiting to be used.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub(crate) api: VecDeque<ApiFault>,
    pub(crate) delivery: VecDeque<DeliveryFault>,
}

impl Faults {
    pub(crate) fn take_api(&mut self, method: &str, path: &str) -> Option<ApiFaultAction> {
        take_first(
            &mut self.api,
            |fault| fault.scope.matches(method, path),
            |fault| &mut fault.scope.times,
        )
        .map(|fault| fault.action)
    }

    pub(crate) fn take_delivery(&mut self, event_type: &str) -> Option<DeliveryFaultAction> {
        take_first(
            &mut self.delivery,
            |fault| fault.event_type.as_deref().is_none_or(|t| t == event_type),
            |fault| &mut fault.times,
        )
        .map(|fault| fault.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_fault_is_used_and_dropped_when_used_up() {
        let mut faults = Faults::default();
        faults
            .api
            .push_back(ApiFault::status(500).on_method("post"));
        faults
            .api
            .push_back(ApiFault::status(503).on_path("/v1/subscriptions").times(2));
        let hit = faults.take_api("GET", "/v1/subscriptions/sub_1");
        assert!(matches!(
            hit,
            Some(ApiFaultAction::Status { status: 503, .. })
        ));
        assert!(faults.take_api("GET", "/v1/customers/cus_1").is_none());
        assert!(faults.take_api("GET", "/v1/subscriptions").is_some());
        assert!(faults.take_api("GET", "/v1/subscriptions").is_none());
        assert_eq!(faults.api.len(), 1);
    }

    #[test]
    fn delivery_faults_match_on_the_event_type() {
        let mut faults = Faults::default();
        faults.delivery.push_back(
            DeliveryFault::new(DeliveryFaultAction::Drop).on_event_type("customer.deleted"),
        );
        faults
            .delivery
            .push_back(DeliveryFault::new(DeliveryFaultAction::Twice));
        assert_eq!(
            faults.take_delivery("customer.subscription.updated"),
            Some(DeliveryFaultAction::Twice)
        );
        assert_eq!(faults.take_delivery("customer.subscription.updated"), None);
        assert_eq!(
            faults.take_delivery("customer.deleted"),
            Some(DeliveryFaultAction::Drop)
        );
    }

    #[test]
    fn json_shapes() -> serde_json::Result<()> {
        let api: ApiFault = serde_json::from_str(
            r#"{"pathPrefix": "/v1/events", "action": {"type": "status", "status": 429}}"#,
        )?;
        assert_eq!(api, ApiFault::status(429).on_path("/v1/events"));
        let delay: ApiFault = serde_json::from_str(r#"{"action": {"type": "delay", "ms": 5}}"#)?;
        assert_eq!(delay, ApiFault::delay(5));
        let delivery: DeliveryFault =
            serde_json::from_str(r#"{"times": 2, "action": "out_of_order"}"#)?;
        assert_eq!(
            delivery,
            DeliveryFault::new(DeliveryFaultAction::OutOfOrder).times(2)
        );
        assert!(ApiFault::status(99).problem().is_some());
        assert!(ApiFault::status(503).times(0).problem().is_some());
        Ok(())
    }
}
