//! The changes to customers and subscriptions and the events each one records, following what
//! Stripe does for the same change made in its dashboard or API.

use serde_json::Value;

use crate::changes::{AdminError, NewCustomer, NewSubscription, SubscriptionChange, TrialEnd};
use crate::events::{Draft, previous_attributes};
use crate::objects::{Customer, Subscription, SubscriptionStatus};
use crate::store::{Store, new_id};

/// Stripe announces the end of a trial this long before it (`trial_will_end`), or at once when
/// a trial is set to end sooner.
const TRIAL_NOTICE_SECS: i64 = 3 * 24 * 3600;

fn invalid(message: impl Into<String>) -> AdminError {
    AdminError::Invalid(message.into())
}

fn missing(kind: &'static str, id: &str) -> AdminError {
    AdminError::NotFound {
        kind,
        id: id.to_owned(),
    }
}

/// The object as it now is and the events to record, in order.
pub(crate) type Outcome = (Value, Vec<Draft>);

pub(crate) fn create_customer(
    store: &mut Store,
    new: NewCustomer,
    now: i64,
) -> Result<Outcome, AdminError> {
    let id = new.id.unwrap_or_else(|| new_id("cus"));
    let customer = Customer {
        id: id.clone(),
        created: now,
        email: new.email,
        name: new.name,
        metadata: new.metadata,
        deleted: false,
    };
    let object = customer.full_json();
    if !store.customers.insert(id.clone(), customer) {
        return Err(AdminError::Conflict {
            kind: "customer",
            id,
        });
    }
    Ok((object.clone(), vec![Draft::new("customer.created", object)]))
}

/// Deletes a customer as Stripe does: its live subscriptions are canceled first (one
/// `customer.subscription.deleted` each), then `customer.deleted`; reads answer a stub after.
pub(crate) fn delete_customer(
    store: &mut Store,
    id: &str,
    now: i64,
    version: &str,
) -> Result<Outcome, AdminError> {
    let customer = store
        .customers
        .get(id)
        .filter(|c| !c.deleted)
        .ok_or_else(|| missing("customer", id))?;
    let snapshot = customer.full_json();
    let mut drafts = Vec::new();
    for subscription in store.subscriptions.iter_mut() {
        if subscription.customer == id && !subscription.status.is_terminal() {
            cancel_now(subscription, now);
            drafts.push(Draft::new(
                "customer.subscription.deleted",
                subscription.to_json(version),
            ));
        }
    }
    drafts.push(Draft::new("customer.deleted", snapshot));
    let customer = store
        .customers
        .get_mut(id)
        .ok_or_else(|| missing("customer", id))?;
    customer.deleted = true;
    Ok((customer.to_json(), drafts))
}

pub(crate) fn create_subscription(
    store: &mut Store,
    new: NewSubscription,
    now: i64,
    version: &str,
) -> Result<Outcome, AdminError> {
    if store.customers.get(&new.customer).is_none_or(|c| c.deleted) {
        return Err(missing("customer", &new.customer));
    }
    if new.price.id.is_empty() {
        return Err(invalid("price.id must not be empty"));
    }
    if new.trial_end.is_some_and(|end| end <= now) {
        return Err(invalid("trialEnd must be in the future"));
    }
    let default_status = if new.trial_end.is_some() {
        SubscriptionStatus::Trialing
    } else {
        SubscriptionStatus::Active
    };
    let status = new.status.unwrap_or(default_status);
    if status.is_terminal() {
        return Err(invalid("create the subscription first, then cancel it"));
    }
    let id = new.id.unwrap_or_else(|| new_id("sub"));
    let mut subscription = Subscription {
        id: id.clone(),
        customer: new.customer,
        status,
        item_id: new_id("si"),
        price: new.price,
        created: now,
        trial_start: new.trial_end.map(|_| now),
        trial_end: new.trial_end,
        cancel_at: None,
        cancel_at_period_end: false,
        canceled_at: None,
        ended_at: None,
        current_period_start: now,
        current_period_end: now,
        metadata: new.metadata,
    };
    subscription.restart_period(now);
    if let Some(end) = subscription
        .trial_end
        .filter(|_| status == SubscriptionStatus::Trialing)
    {
        subscription.current_period_end = end;
    }
    let object = subscription.to_json(version);
    let notice = trial_ends_soon(&subscription, now);
    if !store.subscriptions.insert(id.clone(), subscription) {
        return Err(AdminError::Conflict {
            kind: "subscription",
            id,
        });
    }
    let mut drafts = vec![Draft::new("customer.subscription.created", object.clone())];
    if notice {
        drafts.push(Draft::new(
            "customer.subscription.trial_will_end",
            object.clone(),
        ));
    }
    Ok((object, drafts))
}

pub(crate) fn change_subscription(
    store: &mut Store,
    id: &str,
    change: SubscriptionChange,
    now: i64,
    version: &str,
) -> Result<Outcome, AdminError> {
    let subscription = store
        .subscriptions
        .get_mut(id)
        .ok_or_else(|| missing("subscription", id))?;
    if subscription.status.is_terminal() {
        return Err(invalid(format!(
            "subscription {id} is {}: it can only be deleted",
            subscription.status.as_str()
        )));
    }
    let before = subscription.to_json(version);
    let before_status = subscription.status;
    let trial_notice = apply(subscription, change, now)?;
    let after = subscription.to_json(version);
    let drafts = transition_events(
        &before,
        &after,
        before_status,
        subscription.status,
        trial_notice,
    );
    Ok((after, drafts))
}

/// Cancels the subscription if it is live (with its event), then forgets it: reads answer 404
/// after, as for an id from another account. (Stripe itself keeps canceled subscriptions
/// readable; [`SubscriptionChange::Cancel`] is that.)
pub(crate) fn delete_subscription(
    store: &mut Store,
    id: &str,
    now: i64,
    version: &str,
) -> Result<Outcome, AdminError> {
    let mut subscription = store
        .subscriptions
        .remove(id)
        .ok_or_else(|| missing("subscription", id))?;
    let mut drafts = Vec::new();
    if !subscription.status.is_terminal() {
        cancel_now(&mut subscription, now);
        drafts.push(Draft::new(
            "customer.subscription.deleted",
            subscription.to_json(version),
        ));
    }
    Ok((subscription.to_json(version), drafts))
}

/// Applies `change` after checking it, so that a refused change leaves the subscription as it
/// was. `true` when the change calls for a `trial_will_end` notice.
fn apply(
    subscription: &mut Subscription,
    change: SubscriptionChange,
    now: i64,
) -> Result<bool, AdminError> {
    use SubscriptionStatus::{Active, Canceled, Paused, Trialing};
    match change {
        SubscriptionChange::Status { status: Canceled } | SubscriptionChange::Cancel => {
            cancel_now(subscription, now);
        }
        SubscriptionChange::Status { status } => subscription.status = status,
        SubscriptionChange::TrialEnd {
            trial_end: TrialEnd::Now,
        } => {
            if subscription.status != Trialing {
                return Err(invalid("only a trialing subscription has a trial to end"));
            }
            subscription.status = Active;
            subscription.trial_end = Some(now);
            subscription.restart_period(now);
            // Stripe sends the notice when a trial is ended at once, too.
            return Ok(true);
        }
        SubscriptionChange::TrialEnd {
            trial_end: TrialEnd::At(end),
        } => {
            if end <= now {
                return Err(invalid("trialEnd must be in the future (or \"now\")"));
            }
            match subscription.status {
                Trialing => {}
                Active => {
                    subscription.trial_start = Some(now);
                    subscription.current_period_start = now;
                }
                other => {
                    return Err(invalid(format!(
                        "a {} subscription cannot get a trial",
                        other.as_str()
                    )));
                }
            }
            subscription.status = Trialing;
            subscription.trial_end = Some(end);
            subscription.current_period_end = end;
            return Ok(trial_ends_soon(subscription, now));
        }
        SubscriptionChange::CancelAtPeriodEnd {
            cancel_at_period_end,
        } => {
            subscription.cancel_at_period_end = cancel_at_period_end;
            subscription.cancel_at =
                cancel_at_period_end.then_some(subscription.current_period_end);
            subscription.canceled_at = cancel_at_period_end.then_some(now);
        }
        SubscriptionChange::CancelAt { cancel_at } => {
            if cancel_at.is_some_and(|at| at <= now) {
                return Err(invalid(
                    "cancelAt must be in the future (cancel now with `cancel`)",
                ));
            }
            subscription.cancel_at_period_end = false;
            subscription.cancel_at = cancel_at;
            subscription.canceled_at = cancel_at.map(|_| now);
        }
        SubscriptionChange::Price { price } => {
            if price.id.is_empty() {
                return Err(invalid("price.id must not be empty"));
            }
            let new_interval = price.interval != subscription.price.interval;
            subscription.price = price;
            if new_interval && subscription.status != Trialing {
                subscription.restart_period(now);
            }
        }
        SubscriptionChange::Pause => {
            if subscription.status == Paused {
                return Err(invalid("the subscription is already paused"));
            }
            subscription.status = Paused;
        }
        SubscriptionChange::Resume => {
            if subscription.status != Paused {
                return Err(invalid("only a paused subscription can be resumed"));
            }
            subscription.status = Active;
            subscription.restart_period(now);
        }
    }
    Ok(false)
}

fn cancel_now(subscription: &mut Subscription, now: i64) {
    subscription.status = SubscriptionStatus::Canceled;
    subscription.canceled_at = Some(now);
    subscription.ended_at = Some(now);
}

fn trial_ends_soon(subscription: &Subscription, now: i64) -> bool {
    subscription.status == SubscriptionStatus::Trialing
        && subscription
            .trial_end
            .is_some_and(|end| end - now <= TRIAL_NOTICE_SECS)
}

/// The events Stripe records for a subscription going from `before` to `after`: `deleted` for
/// a cancellation, else `updated` (when anything changed) plus `paused` / `resumed` on those
/// transitions and `trial_will_end` when the trial now ends soon.
fn transition_events(
    before: &Value,
    after: &Value,
    from: SubscriptionStatus,
    to: SubscriptionStatus,
    trial_notice: bool,
) -> Vec<Draft> {
    use SubscriptionStatus::{Canceled, Paused};
    if to == Canceled && from != Canceled {
        return vec![Draft::new("customer.subscription.deleted", after.clone())];
    }
    let mut drafts = Vec::new();
    let previous = previous_attributes(before, after);
    if !previous.is_empty() {
        let mut updated = Draft::new("customer.subscription.updated", after.clone());
        updated.previous = Some(previous);
        drafts.push(updated);
    }
    if to == Paused && from != Paused {
        drafts.push(Draft::new("customer.subscription.paused", after.clone()));
    }
    if from == Paused && to != Paused {
        drafts.push(Draft::new("customer.subscription.resumed", after.clone()));
    }
    if trial_notice {
        drafts.push(Draft::new(
            "customer.subscription.trial_will_end",
            after.clone(),
        ));
    }
    drafts
}
