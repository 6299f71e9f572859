//! The provisioning operations (creating and reading customers and subscriptions):
//! validation, Stigg's error codes and the effect on the store. Everything here runs under
//! the state lock, so check-then-create cannot interleave.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::config::{BillingPeriod, PlanSpec, Pricing};
use crate::fields::{Fields, MAX_LEN};
use crate::reply::Reply;
use crate::store::{Customer, PaymentCollectionMethod, Store, Subscription};

pub(crate) fn create_customer(
    store: &mut Store,
    body: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Reply {
    try_create_customer(store, body, now).unwrap_or_else(|error| error)
}

fn try_create_customer(
    store: &mut Store,
    body: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Reply, Reply> {
    let fields = Fields(body);
    let id = fields.required_str("id")?;
    if !is_valid_customer_id(&id) {
        return Err(Reply::bad_input(
            "id must be 1-255 characters matching ^[a-zA-Z0-9][a-zA-Z0-9_|.@-]*$",
        ));
    }
    let name = fields.optional_str("name")?;
    let email = fields.optional_str("email")?;
    if email
        .as_deref()
        .is_some_and(|email| !looks_like_email(email))
    {
        return Err(Reply::bad_input("email must be an email address"));
    }
    let billing_id = fields.optional_str("billingId")?;
    let metadata = fields.metadata()?;
    if store.customers.contains(&id) {
        return Err(Reply::duplicate());
    }
    let customer = Customer {
        id: id.clone(),
        name,
        email,
        billing_id,
        metadata,
        created_at: now,
        archived_at: None,
    };
    let reply = Reply::data(201, customer.to_json());
    store.customers.insert(id, customer);
    Ok(reply)
}

/// An archived customer is hidden, as Stigg hides it from its API.
pub(crate) fn get_customer(store: &Store, id: &str) -> Reply {
    match store.live_customer(id) {
        Some(customer) => Reply::data(200, customer.to_json()),
        None => customer_not_found(id),
    }
}

pub(crate) fn customer_not_found(id: &str) -> Reply {
    Reply::error(404, "CustomerNotFound", format!("Customer not found: {id}"))
}

pub(crate) fn create_subscription(
    store: &mut Store,
    plans: &[PlanSpec],
    body: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Reply {
    try_create_subscription(store, plans, body, now).unwrap_or_else(|error| error)
}

fn try_create_subscription(
    store: &mut Store,
    plans: &[PlanSpec],
    body: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Reply, Reply> {
    let fields = Fields(body);
    let customer_id = fields.required_str("customerId")?;
    let plan_id = fields.required_str("planId")?;
    let id = fields.optional_str("id")?;
    if id.as_deref() == Some("") {
        return Err(Reply::bad_input("id must not be empty"));
    }
    let requested_period = fields
        .optional_str("billingPeriod")?
        .map(|period| {
            BillingPeriod::parse(&period)
                .ok_or_else(|| Reply::bad_input("billingPeriod must be MONTHLY or ANNUALLY"))
        })
        .transpose()?;
    let billing_id = fields.optional_str("billingId")?;
    // Stripe decides when a change takes effect; only "now" is emulated.
    if fields
        .optional_str("scheduleStrategy")?
        .is_some_and(|strategy| strategy != "IMMEDIATE")
    {
        return Err(Reply::bad_input(
            "scheduleStrategy: the emulator supports IMMEDIATE only",
        ));
    }
    let payment_collection_method = fields
        .optional_str("paymentCollectionMethod")?
        .map(|method| {
            PaymentCollectionMethod::parse(&method).ok_or_else(|| {
                Reply::bad_input("paymentCollectionMethod must be CHARGE, INVOICE or NONE")
            })
        })
        .transpose()?
        .unwrap_or(PaymentCollectionMethod::Charge);
    let metadata = fields.metadata()?;
    let start_date = fields.optional_date("startDate")?.unwrap_or(now);
    let trial = fields.trial(start_date)?;

    if store.live_customer(&customer_id).is_none() {
        return Err(customer_not_found(&customer_id));
    }
    let Some(plan) = plans.iter().find(|plan| plan.id == plan_id) else {
        return Err(Reply::error(
            404,
            "PlanNotFound",
            format!("Plan not found: {plan_id}"),
        ));
    };
    let billing_period = billing_period_for(plan, requested_period)?;
    if id
        .as_deref()
        .is_some_and(|id| store.subscriptions.contains(id))
    {
        return Err(Reply::duplicate());
    }
    let id = id.unwrap_or_else(|| store.new_subscription_id());

    // Stigg would collect payment itself: answer with a checkout link and create nothing.
    if plan.pricing == Pricing::Paid
        && trial.is_none()
        && payment_collection_method != PaymentCollectionMethod::None
    {
        return Ok(Reply::data(
            200,
            json!({
                "id": id,
                "status": "PAYMENT_REQUIRED",
                "subscription": null,
                "entitlements": null,
                "checkoutUrl": format!("https://checkout.example/{id}"),
                "isScheduled": false,
            }),
        ));
    }

    let subscription = Subscription {
        id: id.clone(),
        customer_id,
        plan_id,
        pricing: plan.pricing,
        billing_id,
        billing_period,
        payment_collection_method,
        trial,
        metadata,
        start_date,
        created_at: now,
        cancellation_date: None,
        canceled: false,
    };
    // Stigg keeps one active subscription per customer and product; the emulated catalog is
    // one product, so a new subscription replaces the customer's active one.
    store.cancel_active_of(&subscription.customer_id, now);
    let reply = Reply::data(
        201,
        json!({
            "id": id,
            "status": "SUCCESS",
            "subscription": subscription.to_json(),
            "entitlements": [],
            "isScheduled": false,
        }),
    );
    store.insert_subscription(id, subscription);
    Ok(reply)
}

pub(crate) fn get_subscription(store: &Store, id: &str) -> Reply {
    match store.subscriptions.get(id) {
        Some(subscription) => Reply::data(200, subscription.to_json()),
        None => subscription_not_found(id),
    }
}

pub(crate) fn subscription_not_found(id: &str) -> Reply {
    Reply::error(
        404,
        "SubscriptionNotFound",
        format!("Subscription not found: {id}"),
    )
}

/// The period to store: the requested one if the plan offers it, else the plan's only period.
fn billing_period_for(
    plan: &PlanSpec,
    requested: Option<BillingPeriod>,
) -> Result<Option<BillingPeriod>, Reply> {
    match requested {
        Some(period) if plan.billing_periods.contains(&period) => Ok(Some(period)),
        Some(period) => Err(Reply::bad_input(format!(
            "Plan {} is not offered with billing period {}",
            plan.id,
            period.as_str()
        ))),
        None => match plan.billing_periods.as_slice() {
            [only] => Ok(Some(*only)),
            [_, _, ..] if plan.pricing == Pricing::Paid => Err(Reply::error(
                400,
                "BillingPeriodMissingError",
                format!("billingPeriod is required for plan {}", plan.id),
            )),
            _ => Ok(None),
        },
    }
}

fn is_valid_customer_id(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= MAX_LEN
        && chars
            .next()
            .is_some_and(|first| first.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_|.@-".contains(c))
}

/// A deliberately loose check (one `@`, something on each side, a dot in the domain): Stigg
/// rejects obvious garbage, and a stricter rule would only reject valid addresses.
fn looks_like_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.starts_with('.')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_follow_stiggs_pattern() {
        assert!(is_valid_customer_id("org_42"));
        assert!(is_valid_customer_id("a|b.c@d-e"));
        assert!(!is_valid_customer_id(""));
        assert!(!is_valid_customer_id("_org"));
        assert!(!is_valid_customer_id("org 42"));
        assert!(!is_valid_customer_id(&"a".repeat(256)));
    }

    #[test]
    fn billing_period_rules() {
        let pro = PlanSpec::paid("pro", &[BillingPeriod::Monthly, BillingPeriod::Annually]);
        let annual = PlanSpec::paid("annual", &[BillingPeriod::Annually]);
        let free = PlanSpec::free("free");
        let code = |result: Result<Option<BillingPeriod>, Reply>| {
            result
                .err()
                .and_then(|reply| reply.body["code"].as_str().map(str::to_owned))
        };
        assert_eq!(
            code(billing_period_for(&pro, None)).as_deref(),
            Some("BillingPeriodMissingError")
        );
        assert_eq!(
            code(billing_period_for(&annual, Some(BillingPeriod::Monthly))).as_deref(),
            Some("BadUserInput")
        );
        assert!(matches!(
            billing_period_for(&annual, None),
            Ok(Some(BillingPeriod::Annually))
        ));
        assert!(matches!(billing_period_for(&free, None), Ok(None)));
    }

    #[test]
    fn emails_are_checked_loosely() {
        assert!(looks_like_email("owner@example.org"));
        assert!(!looks_like_email("owner"));
        assert!(!looks_like_email("@example.org"));
        assert!(!looks_like_email("a@b@example.org"));
    }
}
