//! Stripe events: what a change records, how it reads (`GET /v1/events`, webhook bodies) and
//! which deliveries succeeded.

use actix_web::web::Bytes;
use serde_json::{Map, Value, json};

/// An event a change produced, before it gets its id and time.
#[derive(Debug)]
pub(crate) struct Draft {
    pub(crate) kind: &'static str,
    /// The object as it is after the change.
    pub(crate) object: Value,
    /// For updates: the changed top-level fields with their values before the change.
    pub(crate) previous: Option<Map<String, Value>>,
}

impl Draft {
    pub(crate) fn new(kind: &'static str, object: Value) -> Self {
        Self {
            kind,
            object,
            previous: None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    pub(crate) json: Value,
    /// The webhook body: serialised once, so that every attempt (and its signature) carries
    /// the same bytes, as Stripe's retries do.
    pub(crate) payload: Bytes,
    /// Whether any delivery of it was answered 2xx (`delivery_success` filter).
    pub(crate) delivered: bool,
}

impl Event {
    pub(crate) fn new(
        id: String,
        draft: Draft,
        created: i64,
        api_version: &str,
        pending_webhooks: u32,
    ) -> Self {
        let mut data = Map::new();
        data.insert("object".into(), draft.object);
        if let Some(previous) = draft.previous {
            data.insert("previous_attributes".into(), Value::Object(previous));
        }
        let json = json!({
            "id": id,
            "object": "event",
            "api_version": api_version,
            "created": created,
            "data": data,
            "livemode": false,
            "pending_webhooks": pending_webhooks,
            // Changes come from the admin routes, like changes made in Stripe's dashboard,
            // which carry no API request.
            "request": {"id": null, "idempotency_key": null},
            "type": draft.kind,
        });
        let payload = Bytes::from(json.to_string());
        Self {
            id,
            kind: draft.kind,
            json,
            payload,
            delivered: false,
        }
    }
}

/// Stripe's `previous_attributes`: each top-level field whose value changed, with its value
/// before (a changed nested object, such as `items`, is given whole).
pub(crate) fn previous_attributes(before: &Value, after: &Value) -> Map<String, Value> {
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return Map::new();
    };
    before
        .iter()
        .filter(|(key, value)| after.get(key.as_str()) != Some(value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_attributes_hold_the_old_values_of_changed_fields_only() {
        let before =
            json!({"id": "sub_1", "status": "trialing", "trial_end": 10, "items": {"a": 1}});
        let after = json!({"id": "sub_1", "status": "active", "trial_end": 10, "items": {"a": 2}});
        assert_eq!(
            Value::Object(previous_attributes(&before, &after)),
            json!({"status": "trialing", "items": {"a": 1}})
        );
        assert!(previous_attributes(&before, &before).is_empty());
    }

    #[test]
    fn the_payload_is_the_event_json() {
        let mut draft = Draft::new("customer.subscription.updated", json!({"id": "sub_1"}));
        draft.previous = Some(Map::from_iter([("status".to_owned(), json!("trialing"))]));
        let event = Event::new("evt_1".into(), draft, 7, "2024-06-20", 1);
        let parsed: Value = serde_json::from_slice(&event.payload).unwrap_or_default();
        assert_eq!(parsed, event.json);
        assert_eq!(
            event.json["data"]["previous_attributes"]["status"],
            "trialing"
        );
        assert_eq!(event.json["type"], "customer.subscription.updated");
        assert_eq!(event.json["livemode"], false);
    }
}
