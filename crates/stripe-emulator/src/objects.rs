//! The emulated Stripe objects and their JSON, shaped as Stripe's API returns them for the
//! fields onboarding reads (and a few neighbours, so that a client parsing more does not trip).
//! Times are unix seconds, as in Stripe's API.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, Months};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::ITEM_PERIODS_SINCE;

pub(crate) type Metadata = BTreeMap<String, String>;

/// Stripe's subscription statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Paused => "paused",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        serde_json::from_value(Value::String(value.to_owned())).ok()
    }

    /// Stripe allows no change of a subscription in these statuses but its deletion.
    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, Self::Canceled | Self::IncompleteExpired)
    }
}

/// A recurring price's billing interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Day,
    Week,
    #[default]
    Month,
    Year,
}

impl Interval {
    fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    /// The end of one period starting at `start`, by the calendar as Stripe bills (a month
    /// from 31 January ends on the last day of February).
    pub(crate) fn period_end(self, start: i64) -> i64 {
        let Some(start_at) = DateTime::from_timestamp(start, 0) else {
            return start;
        };
        let end = match self {
            Self::Day => start_at.checked_add_days(Days::new(1)),
            Self::Week => start_at.checked_add_days(Days::new(7)),
            Self::Month => start_at.checked_add_months(Months::new(1)),
            Self::Year => start_at.checked_add_months(Months::new(12)),
        };
        end.map_or(start, |end| end.timestamp())
    }
}

/// The price a subscription's item is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceSpec {
    /// `price_…`
    pub id: String,
    #[serde(default)]
    pub lookup_key: Option<String>,
    #[serde(default)]
    pub interval: Interval,
}

impl PriceSpec {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "price",
            "active": true,
            "currency": "usd",
            "livemode": false,
            "lookup_key": self.lookup_key,
            "recurring": {"interval": self.interval.as_str(), "interval_count": 1},
            "type": "recurring",
        })
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Customer {
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) email: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) metadata: Metadata,
    pub(crate) deleted: bool,
}

impl Customer {
    /// What `GET /v1/customers/{id}` answers: the stub Stripe keeps of a deleted customer.
    pub(crate) fn to_json(&self) -> Value {
        if self.deleted {
            return json!({"id": self.id, "object": "customer", "deleted": true});
        }
        self.full_json()
    }

    /// The whole object, also for a deleted customer (the `customer.deleted` event carries it).
    pub(crate) fn full_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "customer",
            "created": self.created,
            "description": null,
            "email": self.email,
            "livemode": false,
            "metadata": self.metadata,
            "name": self.name,
        })
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    pub(crate) id: String,
    pub(crate) customer: String,
    pub(crate) status: SubscriptionStatus,
    pub(crate) item_id: String,
    pub(crate) price: PriceSpec,
    pub(crate) created: i64,
    pub(crate) trial_start: Option<i64>,
    pub(crate) trial_end: Option<i64>,
    pub(crate) cancel_at: Option<i64>,
    pub(crate) cancel_at_period_end: bool,
    pub(crate) canceled_at: Option<i64>,
    pub(crate) ended_at: Option<i64>,
    pub(crate) current_period_start: i64,
    pub(crate) current_period_end: i64,
    pub(crate) metadata: Metadata,
}

impl Subscription {
    /// The subscription as API version `version` shows it: the billing period on the item, and
    /// also on the subscription for versions older than the move.
    pub(crate) fn to_json(&self, version: &str) -> Value {
        let item = json!({
            "id": self.item_id,
            "object": "subscription_item",
            "created": self.created,
            "current_period_start": self.current_period_start,
            "current_period_end": self.current_period_end,
            "metadata": {},
            "price": self.price.to_json(),
            "quantity": 1,
            "subscription": self.id,
        });
        let mut object = json!({
            "id": self.id,
            "object": "subscription",
            "cancel_at": self.cancel_at,
            "cancel_at_period_end": self.cancel_at_period_end,
            "canceled_at": self.canceled_at,
            "created": self.created,
            "customer": self.customer,
            "ended_at": self.ended_at,
            "items": {
                "object": "list",
                "data": [item],
                "has_more": false,
                "total_count": 1,
                "url": format!("/v1/subscription_items?subscription={}", self.id),
            },
            "livemode": false,
            "metadata": self.metadata,
            "start_date": self.created,
            "status": self.status.as_str(),
            "trial_end": self.trial_end,
            "trial_start": self.trial_start,
        });
        if version < ITEM_PERIODS_SINCE
            && let Value::Object(fields) = &mut object
        {
            fields.insert(
                "current_period_start".into(),
                self.current_period_start.into(),
            );
            fields.insert("current_period_end".into(), self.current_period_end.into());
        }
        object
    }

    /// Starts a new billing period at `now` (a resumption, an ended trial, a new interval).
    pub(crate) fn restart_period(&mut self, now: i64) {
        self.current_period_start = now;
        self.current_period_end = self.price.interval.period_end(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription() -> Subscription {
        Subscription {
            id: "sub_1".into(),
            customer: "cus_1".into(),
            status: SubscriptionStatus::Active,
            item_id: "si_1".into(),
            price: PriceSpec {
                id: "price_1".into(),
                lookup_key: Some("plan_pro_m".into()),
                interval: Interval::Month,
            },
            created: 100,
            trial_start: None,
            trial_end: None,
            cancel_at: None,
            cancel_at_period_end: false,
            canceled_at: None,
            ended_at: None,
            current_period_start: 100,
            current_period_end: 200,
            metadata: Metadata::new(),
        }
    }

    #[test]
    fn the_billing_period_leaves_the_subscription_with_the_2025_versions() {
        let old = subscription().to_json("2024-06-20");
        let new = subscription().to_json("2025-03-31.basil");
        assert_eq!(old["current_period_end"], 200);
        assert!(new.get("current_period_end").is_none());
        for object in [old, new] {
            let item = &object["items"]["data"][0];
            assert_eq!(item["current_period_start"], 100);
            assert_eq!(item["current_period_end"], 200);
            assert_eq!(item["price"]["lookup_key"], "plan_pro_m");
            assert_eq!(item["price"]["recurring"]["interval"], "month");
        }
    }

    #[test]
    fn periods_follow_the_calendar() {
        // 2030-01-31T00:00:00Z plus a month is the last day of February.
        assert_eq!(Interval::Month.period_end(1_896_048_000), 1_898_467_200);
        assert_eq!(Interval::Day.period_end(0), 86_400);
        assert_eq!(Interval::Year.period_end(0), 365 * 86_400);
    }

    #[test]
    fn statuses_round_trip_their_stripe_names() {
        for name in ["past_due", "incomplete_expired", "paused", "trialing"] {
            assert_eq!(
                SubscriptionStatus::parse(name).map(|s| s.as_str()),
                Some(name)
            );
        }
        assert_eq!(SubscriptionStatus::parse("all"), None);
    }

    #[test]
    fn a_deleted_customer_reads_as_a_stub() {
        let mut customer = Customer {
            id: "cus_1".into(),
            created: 1,
            email: Some("a@example.org".into()),
            name: None,
            metadata: Metadata::new(),
            deleted: false,
        };
        assert_eq!(customer.to_json()["email"], "a@example.org");
        customer.deleted = true;
        assert_eq!(
            customer.to_json(),
            json!({"id": "cus_1", "object": "customer", "deleted": true})
        );
        assert_eq!(customer.full_json()["email"], "a@example.org");
    }
}
