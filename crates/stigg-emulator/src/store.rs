//! The emulated Stigg entities and their in-memory store (creation order is kept, so that
//! listings read like the history of the test).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::config::{BillingPeriod, Pricing};
use crate::view::SubscriptionStatus;

pub(crate) type Metadata = BTreeMap<String, String>;

#[derive(Clone, Debug)]
pub(crate) struct Customer {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) billing_id: Option<String>,
    pub(crate) metadata: Metadata,
    pub(crate) created_at: DateTime<Utc>,
    /// Set once archived: the customer is then hidden from the API, but archiving it again
    /// still succeeds.
    pub(crate) archived_at: Option<DateTime<Utc>>,
}

impl Customer {
    /// Stigg's `Customer` shape; fields the emulator does not model are present with their
    /// empty values so that clients parsing the full shape do not trip.
    pub(crate) fn to_json(&self) -> Value {
        let created_at = timestamp(self.created_at);
        json!({
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "billingId": self.billing_id,
            "billingCurrency": null,
            "metadata": self.metadata,
            "couponId": null,
            "defaultPaymentMethod": null,
            "integrations": [],
            "language": null,
            "timezone": null,
            "createdAt": created_at,
            "updatedAt": created_at,
            "archivedAt": self.archived_at.map(timestamp),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PaymentCollectionMethod {
    Charge,
    Invoice,
    None,
}

impl PaymentCollectionMethod {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "CHARGE" => Some(Self::Charge),
            "INVOICE" => Some(Self::Invoice),
            "NONE" => Some(Self::None),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Charge => "CHARGE",
            Self::Invoice => "INVOICE",
            Self::None => "NONE",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Trial {
    pub(crate) end_date: DateTime<Utc>,
    /// `CONVERT_TO_PAID` or `CANCEL_SUBSCRIPTION`.
    pub(crate) end_behavior: &'static str,
}

#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    pub(crate) id: String,
    pub(crate) customer_id: String,
    pub(crate) plan_id: String,
    pub(crate) pricing: Pricing,
    pub(crate) billing_id: Option<String>,
    pub(crate) billing_period: Option<BillingPeriod>,
    pub(crate) payment_collection_method: PaymentCollectionMethod,
    pub(crate) trial: Option<Trial>,
    pub(crate) metadata: Metadata,
    pub(crate) start_date: DateTime<Utc>,
    pub(crate) created_at: DateTime<Utc>,
    /// When it ends (or ended): set by a cancellation, on a date or now.
    pub(crate) cancellation_date: Option<DateTime<Utc>>,
    /// Ended: canceled now, replaced, or its customer archived. Time does not run in the
    /// emulator, so a cancellation date alone never ends it.
    pub(crate) canceled: bool,
}

impl Subscription {
    pub(crate) fn status(&self) -> SubscriptionStatus {
        if self.canceled {
            SubscriptionStatus::Canceled
        } else if self.trial.is_some() {
            SubscriptionStatus::InTrial
        } else {
            SubscriptionStatus::Active
        }
    }

    /// Ends it at `now`.
    pub(crate) fn cancel_now(&mut self, now: DateTime<Utc>) {
        self.canceled = true;
        self.cancellation_date = Some(now);
    }

    pub(crate) fn to_json(&self) -> Value {
        let status = self.status().as_str();
        let cancellation_date = self.cancellation_date.map(timestamp);
        json!({
            "id": self.id,
            "customerId": self.customer_id,
            "planId": self.plan_id,
            "billingId": self.billing_id,
            "billingPeriod": self.billing_period.map(BillingPeriod::as_str),
            "status": status,
            "pricingType": self.pricing.as_str(),
            "paymentCollection": "NOT_REQUIRED",
            "paymentCollectionMethod": self.payment_collection_method.as_str(),
            "trialEndDate": self.trial.as_ref().map(|trial| timestamp(trial.end_date)),
            "trial": self.trial.as_ref().map(|trial| json!({ "trialEndBehavior": trial.end_behavior })),
            "metadata": self.metadata,
            "startDate": timestamp(self.start_date),
            "createdAt": timestamp(self.created_at),
            "endDate": cancellation_date,
            "cancellationDate": cancellation_date,
            "resourceId": null,
            "payingCustomerId": null,
            "addons": [],
            "prices": [],
        })
    }
}

/// Stigg's timestamp format: RFC 3339 in UTC with milliseconds.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Entities in creation order, with an index by id.
#[derive(Debug)]
pub(crate) struct Table<T> {
    rows: Vec<T>,
    by_id: HashMap<String, usize>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            by_id: HashMap::new(),
        }
    }
}

impl<T> Table<T> {
    pub(crate) fn get(&self, id: &str) -> Option<&T> {
        self.by_id.get(id).and_then(|&index| self.rows.get(index))
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.by_id
            .get(id)
            .and_then(|&index| self.rows.get_mut(index))
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Adds a row whose id the caller has checked to be new.
    pub(crate) fn insert(&mut self, id: String, row: T) {
        self.by_id.insert(id, self.rows.len());
        self.rows.push(row);
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.rows.iter()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) customers: Table<Customer>,
    pub(crate) subscriptions: Table<Subscription>,
    /// The ids of each customer's subscriptions, so that finding or ending its active one
    /// does not scan every subscription (a create does both, under the one state lock).
    subscriptions_of: HashMap<String, Vec<String>>,
    generated_ids: u64,
}

impl Store {
    /// The customer, unless unknown or archived.
    pub(crate) fn live_customer(&self, id: &str) -> Option<&Customer> {
        self.customers
            .get(id)
            .filter(|customer| customer.archived_at.is_none())
    }

    /// The customer's subscription that has not ended, if any (there is one at most).
    pub(crate) fn active_of(&self, customer_id: &str) -> Option<&Subscription> {
        self.subscriptions_of
            .get(customer_id)?
            .iter()
            .filter_map(|id| self.subscriptions.get(id))
            .find(|subscription| !subscription.canceled)
    }

    /// Ends every subscription of the customer that has not ended.
    pub(crate) fn cancel_active_of(&mut self, customer_id: &str, now: DateTime<Utc>) {
        for id in self.subscriptions_of.get(customer_id).into_iter().flatten() {
            if let Some(subscription) = self.subscriptions.get_mut(id)
                && !subscription.canceled
            {
                subscription.cancel_now(now);
            }
        }
    }

    /// Adds a subscription whose id the caller has checked to be new.
    pub(crate) fn insert_subscription(&mut self, id: String, subscription: Subscription) {
        self.subscriptions_of
            .entry(subscription.customer_id.clone())
            .or_default()
            .push(id.clone());
        self.subscriptions.insert(id, subscription);
    }

    /// An id for a subscription created without one, unused so far.
    pub(crate) fn new_subscription_id(&mut self) -> String {
        loop {
            self.generated_ids += 1;
            let id = format!("subscription-emu-{:06}", self.generated_ids);
            if !self.subscriptions.contains(&id) {
                return id;
            }
        }
    }
}
