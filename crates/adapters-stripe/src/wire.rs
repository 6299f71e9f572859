//! Stripe's JSON as the client reads it, and its translation into the domain's values. Only
//! the fields the domain keeps are declared; Stripe's many others are ignored, so that new
//! fields never break the reading.

use chrono::{DateTime, Utc};
use onboarding_domain::model::{
    StripeCustomer, StripeCustomerId, StripePrice, StripePriceId, StripeSubscription,
    StripeSubscriptionId, StripeSubscriptionItem, SubscriptionStatus,
};
use serde::Deserialize;

/// A subscription object (`GET /v1/subscriptions/{id}`).
#[derive(Debug, Deserialize)]
struct Subscription {
    id: String,
    customer: Expandable,
    status: String,
    #[serde(default)]
    trial_end: Option<i64>,
    #[serde(default)]
    cancel_at: Option<i64>,
    #[serde(default)]
    cancel_at_period_end: bool,
    /// Gone from the subscription since API version 2025-03-31; read when present.
    #[serde(default)]
    current_period_end: Option<i64>,
    items: List<Item>,
}

/// A reference Stripe answers as the id, or as the whole object when it was expanded.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    fn id(&self) -> &str {
        match self {
            Self::Id(id) | Self::Object { id } => id,
        }
    }
}

#[derive(Debug, Deserialize)]
struct List<T> {
    data: Vec<T>,
}

#[derive(Debug, Deserialize)]
struct Item {
    price: Price,
    #[serde(default)]
    current_period_end: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Price {
    id: String,
    #[serde(default)]
    lookup_key: Option<String>,
}

/// A customer object, or the stub Stripe keeps of a deleted one (`{id, deleted: true}`).
#[derive(Debug, Deserialize)]
struct Customer {
    id: String,
    #[serde(default)]
    deleted: bool,
}

/// The domain's subscription from Stripe's JSON. The error says what was wrong, in words
/// that never repeat more than a field's name and the JSON parser's position.
pub(crate) fn subscription(body: &[u8]) -> Result<StripeSubscription, String> {
    let wire: Subscription =
        serde_json::from_slice(body).map_err(|e| json_error("subscription", &e))?;
    let Some(first) = wire.items.data.into_iter().next() else {
        return Err(format!("subscription '{}' has no items", wire.id));
    };
    Ok(StripeSubscription {
        id: StripeSubscriptionId::parse(&wire.id).map_err(|e| format!("subscription id: {e}"))?,
        customer: StripeCustomerId::parse(wire.customer.id())
            .map_err(|e| format!("subscription customer: {e}"))?,
        status: SubscriptionStatus::parse(&wire.status),
        trial_end: time("trial_end", wire.trial_end)?,
        cancel_at: time("cancel_at", wire.cancel_at)?,
        cancel_at_period_end: wire.cancel_at_period_end,
        current_period_end: time("current_period_end", wire.current_period_end)?,
        first_item: StripeSubscriptionItem {
            price: StripePrice {
                id: StripePriceId::parse(&first.price.id)
                    .map_err(|e| format!("item price id: {e}"))?,
                lookup_key: first.price.lookup_key,
            },
            current_period_end: time("item current_period_end", first.current_period_end)?,
        },
    })
}

/// The domain's customer from Stripe's JSON.
pub(crate) fn customer(body: &[u8]) -> Result<StripeCustomer, String> {
    let wire: Customer = serde_json::from_slice(body).map_err(|e| json_error("customer", &e))?;
    Ok(StripeCustomer {
        id: StripeCustomerId::parse(&wire.id).map_err(|e| format!("customer id: {e}"))?,
        deleted: wire.deleted,
    })
}

/// serde's words without the value it quotes (which is Stripe's data, not ours to log).
fn json_error(object: &str, error: &serde_json::Error) -> String {
    let what = match error.classify() {
        serde_json::error::Category::Io | serde_json::error::Category::Eof => "is cut short",
        serde_json::error::Category::Syntax => "is not JSON",
        serde_json::error::Category::Data => "does not have the expected fields",
    };
    let field = error.to_string();
    // "missing field `items` at line 1 column 10" names the field, and nothing of the value.
    let missing = field
        .strip_prefix("missing field ")
        .and_then(|rest| rest.split(' ').next())
        .map(|name| format!(" (missing {name})"))
        .unwrap_or_default();
    format!(
        "the {object} {what}{missing} at line {} column {}",
        error.line(),
        error.column()
    )
}

/// Unix seconds, as Stripe gives times.
fn time(field: &str, seconds: Option<i64>) -> Result<Option<DateTime<Utc>>, String> {
    seconds
        .map(|s| {
            DateTime::from_timestamp(s, 0).ok_or_else(|| format!("{field} {s} is out of range"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn at(seconds: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(seconds, 0)
    }

    fn bytes(value: &Value) -> Vec<u8> {
        serde_json::to_vec(value).expect("JSON values serialise")
    }

    /// A subscription as API version 2025-03-31.basil answers it (trimmed of fields nobody
    /// reads), with its customer expanded.
    fn basil() -> Value {
        json!({
            "id": "sub_1R2x3Y",
            "object": "subscription",
            "billing_cycle_anchor": 1_743_465_600,
            "cancel_at": 1_746_057_600,
            "cancel_at_period_end": false,
            "canceled_at": null,
            "created": 1_743_465_600,
            "customer": {
                "id": "cus_Q9w8E7",
                "object": "customer",
                "email": "billing@example.org",
                "metadata": {}
            },
            "items": {
                "object": "list",
                "data": [{
                    "id": "si_S1",
                    "object": "subscription_item",
                    "current_period_start": 1_743_465_600,
                    "current_period_end": 1_746_057_600,
                    "price": {
                        "id": "price_1Pro",
                        "object": "price",
                        "lookup_key": "pro_monthly",
                        "recurring": {"interval": "month", "interval_count": 1}
                    },
                    "quantity": 1
                }],
                "has_more": false,
                "total_count": 1,
                "url": "/v1/subscription_items?subscription=sub_1R2x3Y"
            },
            "livemode": false,
            "status": "trialing",
            "trial_end": 1_744_675_200,
            "trial_start": 1_743_465_600
        })
    }

    #[test]
    fn reads_a_basil_subscription_with_an_expanded_customer() {
        let parsed = subscription(&bytes(&basil()));
        let expected = StripeSubscription {
            id: StripeSubscriptionId::parse("sub_1R2x3Y").expect("valid id"),
            customer: StripeCustomerId::parse("cus_Q9w8E7").expect("valid id"),
            status: SubscriptionStatus::Trialing,
            trial_end: at(1_744_675_200),
            cancel_at: at(1_746_057_600),
            cancel_at_period_end: false,
            current_period_end: None,
            first_item: StripeSubscriptionItem {
                price: StripePrice {
                    id: StripePriceId::parse("price_1Pro").expect("valid id"),
                    lookup_key: Some("pro_monthly".into()),
                },
                current_period_end: at(1_746_057_600),
            },
        };
        assert_eq!(parsed, Ok(expected));
    }

    #[test]
    fn reads_an_older_subscription_with_its_period_on_top_and_a_customer_id() {
        let mut old = basil();
        old["customer"] = json!("cus_Q9w8E7");
        old["current_period_end"] = json!(1_746_057_600);
        old["cancel_at"] = Value::Null;
        old["trial_end"] = Value::Null;
        old["cancel_at_period_end"] = json!(true);
        old["status"] = json!("past_due");
        old["items"]["data"][0]["price"]["lookup_key"] = Value::Null;
        let parsed = subscription(&bytes(&old)).expect("an older version is read");
        assert_eq!(parsed.customer.as_str(), "cus_Q9w8E7");
        assert_eq!(parsed.current_period_end, at(1_746_057_600));
        assert_eq!(parsed.cancel_at, None);
        assert_eq!(parsed.trial_end, None);
        assert!(parsed.cancel_at_period_end);
        assert_eq!(parsed.status, SubscriptionStatus::PastDue);
        assert_eq!(parsed.first_item.price.lookup_key, None);
    }

    #[test]
    fn a_status_stripe_adds_later_is_kept() {
        let mut future = basil();
        future["status"] = json!("hibernating");
        let parsed = subscription(&bytes(&future)).expect("read");
        assert_eq!(
            parsed.status,
            SubscriptionStatus::Other("hibernating".into())
        );
    }

    #[test]
    fn a_subscription_without_items_is_refused() {
        let mut empty = basil();
        empty["items"]["data"] = json!([]);
        assert_eq!(
            subscription(&bytes(&empty)),
            Err("subscription 'sub_1R2x3Y' has no items".into())
        );
        let mut none = basil();
        if let Value::Object(fields) = &mut none {
            fields.remove("items");
        }
        let error = subscription(&bytes(&none)).expect_err("no items list");
        assert!(error.contains("missing `items`"), "{error}");
    }

    #[test]
    fn bad_values_are_refused_without_repeating_them() {
        let mut bad = basil();
        bad["trial_end"] = json!("sk_live_echoed");
        let error = subscription(&bytes(&bad)).expect_err("a string time");
        assert!(!error.contains("sk_live_echoed"), "{error}");
        assert!(error.contains("expected fields"), "{error}");

        let mut far = basil();
        far["cancel_at"] = json!(i64::MAX);
        assert_eq!(
            subscription(&bytes(&far)),
            Err(format!("cancel_at {} is out of range", i64::MAX))
        );

        let mut foreign = basil();
        foreign["customer"] = json!("acct_1");
        let error = subscription(&bytes(&foreign)).expect_err("not a customer id");
        assert!(error.starts_with("subscription customer:"), "{error}");

        assert!(subscription(b"<html>").is_err_and(|e| e.contains("is not JSON")));
    }

    #[test]
    fn reads_customers_live_and_deleted() {
        let live = json!({"id": "cus_Q9w8E7", "object": "customer", "email": null});
        let deleted = json!({"id": "cus_Q9w8E7", "object": "customer", "deleted": true});
        let id = StripeCustomerId::parse("cus_Q9w8E7").expect("valid id");
        assert_eq!(
            customer(&bytes(&live)),
            Ok(StripeCustomer {
                id: id.clone(),
                deleted: false
            })
        );
        assert_eq!(
            customer(&bytes(&deleted)),
            Ok(StripeCustomer { id, deleted: true })
        );
        assert!(customer(br#"{"object": "customer"}"#).is_err());
    }
}
