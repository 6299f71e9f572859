//! What changes a subscription or a customer after provisioning: PATCH, cancel, archive,
//! with Stigg's answers (the changed entity, `SubscriptionNotFound`, `CustomerNotFound`,
//! `SubscriptionAlreadyCanceledOrExpired`). Runs under the state lock, like provisioning.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::fields::Fields;
use crate::provisioning::{customer_not_found, subscription_not_found};
use crate::reply::Reply;
use crate::store::{Store, Subscription};

/// What a PATCH does to the cancellation date.
enum CancellationChange {
    Keep,
    Remove,
    Set(DateTime<Utc>),
}

/// `PATCH /api/v1/subscriptions/{id}`: `trialEndDate` and `cancellationDate` (`null` takes
/// a cancellation back). Other fields are ignored.
pub(crate) fn patch_subscription(store: &mut Store, id: &str, body: &Map<String, Value>) -> Reply {
    try_patch_subscription(store, id, body).unwrap_or_else(|error| error)
}

fn try_patch_subscription(
    store: &mut Store,
    id: &str,
    body: &Map<String, Value>,
) -> Result<Reply, Reply> {
    let fields = Fields(body);
    let trial_end = fields.optional_date("trialEndDate")?;
    // `Fields` reads `null` as absent; here `null` is the change itself.
    let cancellation = match body.get("cancellationDate") {
        None => CancellationChange::Keep,
        Some(Value::Null) => CancellationChange::Remove,
        Some(_) => fields
            .optional_date("cancellationDate")?
            .map_or(CancellationChange::Keep, CancellationChange::Set),
    };
    let subscription = live_subscription(store, id)?;
    if let Some(end) = trial_end {
        let Some(trial) = subscription.trial.as_mut() else {
            return Err(Reply::bad_input(format!(
                "Subscription {id} is not in trial: trialEndDate cannot be set"
            )));
        };
        trial.end_date = end;
    }
    match cancellation {
        CancellationChange::Keep => {}
        CancellationChange::Remove => subscription.cancellation_date = None,
        CancellationChange::Set(date) => subscription.cancellation_date = Some(date),
    }
    Ok(Reply::data(200, subscription.to_json()))
}

/// `POST /api/v1/subscriptions/{id}/cancel`: `{cancellationTime, endDate?,
/// cancellationAction?}`. `IMMEDIATE` ends it now, `SPECIFIC_DATE` sets its cancellation
/// date; `END_OF_BILLING_PERIOD` is not emulated (there are no billing periods here).
pub(crate) fn cancel_subscription(
    store: &mut Store,
    id: &str,
    body: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Reply {
    try_cancel_subscription(store, id, body, now).unwrap_or_else(|error| error)
}

fn try_cancel_subscription(
    store: &mut Store,
    id: &str,
    body: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Reply, Reply> {
    let fields = Fields(body);
    let end_date = match fields.required_str("cancellationTime")?.as_str() {
        "IMMEDIATE" => None,
        "SPECIFIC_DATE" => Some(
            fields
                .optional_date("endDate")?
                .ok_or_else(|| Reply::bad_input("endDate is required for SPECIFIC_DATE"))?,
        ),
        "END_OF_BILLING_PERIOD" => {
            return Err(Reply::bad_input(
                "cancellationTime END_OF_BILLING_PERIOD is not emulated",
            ));
        }
        _ => {
            return Err(Reply::bad_input(
                "cancellationTime must be IMMEDIATE, SPECIFIC_DATE or END_OF_BILLING_PERIOD",
            ));
        }
    };
    // The action changes entitlements, which the emulator does not hold; it is only checked.
    if let Some(action) = fields.optional_str("cancellationAction")?
        && !matches!(action.as_str(), "DEFAULT" | "REVOKE_ENTITLEMENTS")
    {
        return Err(Reply::bad_input(
            "cancellationAction must be DEFAULT or REVOKE_ENTITLEMENTS",
        ));
    }
    let subscription = live_subscription(store, id)?;
    match end_date {
        None => subscription.cancel_now(now),
        Some(date) => subscription.cancellation_date = Some(date),
    }
    Ok(Reply::data(200, subscription.to_json()))
}

/// `POST /api/v1/customers/{id}/archive`: hides the customer and ends its subscriptions.
/// Archiving an archived customer succeeds again.
pub(crate) fn archive_customer(store: &mut Store, id: &str, now: DateTime<Utc>) -> Reply {
    let Some(customer) = store.customers.get_mut(id) else {
        return customer_not_found(id);
    };
    if customer.archived_at.is_none() {
        customer.archived_at = Some(now);
    }
    let reply = Reply::data(200, customer.to_json());
    store.cancel_active_of(id, now);
    reply
}

/// The subscription, unless unknown (404) or ended (400, Stigg's refusal to change it).
fn live_subscription<'a>(store: &'a mut Store, id: &str) -> Result<&'a mut Subscription, Reply> {
    let subscription = store
        .subscriptions
        .get_mut(id)
        .ok_or_else(|| subscription_not_found(id))?;
    if subscription.canceled {
        return Err(Reply::error(
            400,
            "SubscriptionAlreadyCanceledOrExpired",
            format!("Subscription {id} is already canceled or expired"),
        ));
    }
    Ok(subscription)
}
