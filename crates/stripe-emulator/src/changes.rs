//! What the admin routes and the handle take to change customers and subscriptions, and what
//! they answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::objects::{PriceSpec, SubscriptionStatus};
use crate::reply::Reply;

/// A customer to create. JSON (camelCase): `{"id"?, "email"?, "name"?, "metadata"?}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCustomer {
    /// `cus_…`; a fresh one when absent.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A subscription to create, with one item on `price`. JSON (camelCase):
/// `{"id"?, "customer", "price": {"id", "lookupKey"?, "interval"?}, "status"?, "trialEnd"?,
/// "metadata"?}`. Without `status` it is `trialing` when `trialEnd` (unix seconds, in the
/// future) is given, else `active`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSubscription {
    /// `sub_…`; a fresh one when absent (tests give one to match rows they insert).
    #[serde(default)]
    pub id: Option<String>,
    pub customer: String,
    pub price: PriceSpec,
    #[serde(default)]
    pub status: Option<SubscriptionStatus>,
    #[serde(default)]
    pub trial_end: Option<i64>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl NewSubscription {
    /// An active subscription of `customer` on `price`; set the other fields as needed.
    pub fn new(customer: impl Into<String>, price: PriceSpec) -> Self {
        Self {
            id: None,
            customer: customer.into(),
            price,
            status: None,
            trial_end: None,
            metadata: BTreeMap::new(),
        }
    }
}

/// A change to an existing subscription. JSON: the fields, with the change's name in
/// `"change"` (the admin route takes the name from its path), e.g.
/// `{"change": "status", "status": "past_due"}`, `{"change": "trial-end", "trialEnd": "now"}`,
/// `{"change": "cancel-at", "cancelAt": null}`, `{"change": "price", "price": {"id": …}}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(
    tag = "change",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum SubscriptionChange {
    /// Sets the status as such (`canceled` cancels now, with its event).
    Status {
        status: SubscriptionStatus,
    },
    /// Moves the trial's end (starting a trial on an active subscription), or ends it now.
    TrialEnd {
        trial_end: TrialEnd,
    },
    /// Schedules (or takes back) a cancellation at the end of the current period.
    CancelAtPeriodEnd {
        cancel_at_period_end: bool,
    },
    /// Schedules a cancellation at a date (unix seconds), or clears it with `null`.
    CancelAt {
        cancel_at: Option<i64>,
    },
    /// Cancels now (`customer.subscription.deleted`); the subscription stays readable.
    Cancel,
    /// Puts the item on another price; a new interval starts a new period.
    Price {
        price: PriceSpec,
    },
    Pause,
    /// A paused subscription becomes active, with a new period from now.
    Resume,
}

/// A trial end: a unix time in the future, or `"now"` to end the trial at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub enum TrialEnd {
    Now,
    At(i64),
}

impl TryFrom<Value> for TrialEnd {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        match value {
            Value::String(text) if text == "now" => Ok(Self::Now),
            Value::Number(number) => number
                .as_i64()
                .map(Self::At)
                .ok_or_else(|| format!("trialEnd {number} is not a whole number of unix seconds")),
            other => Err(format!(
                "trialEnd must be unix seconds or \"now\", not {other}"
            )),
        }
    }
}

/// What an admin change did: the object as it is now, and the events it recorded (each as
/// `GET /v1/events` shows it).
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub object: Value,
    pub events: Vec<Value>,
}

/// Why an admin change was refused; nothing changed and no event was recorded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("No such {kind}: '{id}'")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id} already exists")]
    Conflict { kind: &'static str, id: String },
    #[error("{0}")]
    Invalid(String),
}

impl AdminError {
    pub(crate) fn to_reply(&self) -> Reply {
        match self {
            Self::NotFound { kind, id } => Reply::resource_missing(kind, id, "id"),
            Self::Conflict { .. } => Reply::error(
                409,
                "invalid_request_error",
                Some("resource_already_exists"),
                self.to_string(),
                Some("id"),
            ),
            Self::Invalid(message) => Reply::invalid(message.clone(), None),
        }
    }
}
