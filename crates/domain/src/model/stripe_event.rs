//! Stripe's webhook events as the inbox keeps them: which object each is about, and where
//! each stands.

use std::fmt;

use chrono::{DateTime, Utc};

use super::{IdError, LeaseKey, StripeCustomerId, StripeSubscriptionId};

/// A Stripe event id (`evt_…`): 1–255 visible ASCII characters. Stripe's own rule is its
/// business; this one only keeps the value printable and bounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct StripeEventId(String);

impl StripeEventId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let visible = raw.bytes().all(|b| b.is_ascii_graphic());
        if raw.is_empty() || raw.len() > 255 || !visible {
            return Err(IdError(
                "must be 1 to 255 visible ASCII characters".to_owned(),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StripeEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Stripe object a handled event is about. Events about one subject wait together and
/// are handled together, under the subject's lease.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventSubject {
    Subscription(StripeSubscriptionId),
    Customer(StripeCustomerId),
}

impl EventSubject {
    /// The subject an event of `event_type` about object `object_id` asks to sync; `None`
    /// for the types the sync does not handle (they are stored and marked ignored).
    ///
    /// # Errors
    /// A handled type whose object id is not an id of the kind it should be.
    pub fn of_event(event_type: &str, object_id: &str) -> Result<Option<Self>, IdError> {
        if HANDLED_SUBSCRIPTION_EVENTS.contains(&event_type) {
            return StripeSubscriptionId::parse(object_id).map(|id| Some(Self::Subscription(id)));
        }
        if event_type == CUSTOMER_DELETED {
            return StripeCustomerId::parse(object_id).map(|id| Some(Self::Customer(id)));
        }
        Ok(None)
    }

    /// Parses what [`EventSubject::object_id`] wrote: the id's prefix tells the kind.
    pub fn from_object_id(object_id: &str) -> Option<Self> {
        if object_id.starts_with("sub_") {
            StripeSubscriptionId::parse(object_id)
                .ok()
                .map(Self::Subscription)
        } else {
            StripeCustomerId::parse(object_id).ok().map(Self::Customer)
        }
    }

    /// The Stripe object id.
    pub fn object_id(&self) -> &str {
        match self {
            Self::Subscription(id) => id.as_str(),
            Self::Customer(id) => id.as_str(),
        }
    }

    /// The lease that serialises work on this subject: the subscription's is the one
    /// provisioning takes.
    pub fn lease_key(&self) -> LeaseKey {
        match self {
            Self::Subscription(id) => LeaseKey::subscription(id),
            Self::Customer(id) => LeaseKey::customer(id),
        }
    }
}

impl fmt::Display for EventSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.object_id())
    }
}

/// The one customer event the sync acts on.
pub const CUSTOMER_DELETED: &str = "customer.deleted";

/// The event type as the sync names it, when it acts on events of that type; `None` for the
/// types it stores as ignored.
pub fn handled_event_type(event_type: &str) -> Option<&'static str> {
    HANDLED_SUBSCRIPTION_EVENTS
        .iter()
        .chain(std::iter::once(&CUSTOMER_DELETED))
        .find(|handled| **handled == event_type)
        .copied()
}

/// The subscription events the sync acts on; [`CUSTOMER_DELETED`] is the one customer event.
pub const HANDLED_SUBSCRIPTION_EVENTS: [&str; 7] = [
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "customer.subscription.pending_update_applied",
];

/// Where a stored event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventStatus {
    /// Waiting to be handled (for the first time, or again after a transient failure).
    Pending,
    /// Handled: Stigg matches what Stripe held when the event was handled.
    Applied,
    /// A type the sync does not act on.
    Ignored,
    /// Given up: the reason is kept; `sync --retry-failed` tries again.
    Failed,
}

impl EventStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Applied, Self::Ignored, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Applied => "applied",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == raw)
    }
}

impl fmt::Display for EventStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event as delivered, checked and ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    pub id: StripeEventId,
    pub event_type: String,
    /// `data.object.id`, as Stripe sent it (any text for types the sync ignores).
    pub object_id: String,
    /// Stripe's `created` (when the change happened), when the event carries it.
    pub created: Option<DateTime<Utc>>,
    pub livemode: bool,
    /// The raw body, as signed.
    pub payload: String,
    /// `Pending` for handled types, `Ignored` for the rest, `Failed` for a handled type
    /// whose object id is not of its kind.
    pub status: EventStatus,
    /// Why it failed at once, for `Failed`.
    pub error: Option<String>,
    pub received_at: DateTime<Utc>,
}

impl ReceivedEvent {
    /// The status and error an event of `event_type` about `object_id` is stored with.
    pub fn initial_status(event_type: &str, object_id: &str) -> (EventStatus, Option<String>) {
        match EventSubject::of_event(event_type, object_id) {
            Ok(Some(_)) => (EventStatus::Pending, None),
            Ok(None) => (EventStatus::Ignored, None),
            Err(error) => (
                EventStatus::Failed,
                Some(format!(
                    "object id '{object_id}' of a {event_type} event: {error}"
                )),
            ),
        }
    }
}

/// One Stigg call an event's handling made, for the event's record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MoveRecord {
    /// What was called: `provision`, `create_subscription`, `patch_subscription`,
    /// `cancel_subscription`, `archive_customer`.
    pub call: String,
    /// The Stigg subscription or customer it acted on.
    pub stigg_id: String,
    pub at: DateTime<Utc>,
}
