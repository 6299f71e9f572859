//! What a 2xx answer must show before it counts as done.
//!
//! Stigg replays the first answer to a repeated idempotency key for 24 h, and that answer may
//! describe an earlier request's data. So an answer counts only when the entity it shows is
//! the one asked for, in the state asked for; otherwise the call fails with
//! [`StiggError::Conflict`], never a success.

use chrono::{DateTime, Utc};
use onboarding_adapters_http::clean;
use onboarding_domain::model::BillingPeriod;
use onboarding_domain::ports::{
    Cancellation, CustomerProvisioning, StiggCustomer, StiggError, StiggSubscription,
    SubscriptionPatch, SubscriptionProvisioning,
};

use crate::Operation;
use crate::error::invalid_response;
use crate::wire::{CustomerData, SubscriptionData, SubscriptionProvisionData, iso};

/// What a create answered.
pub(crate) enum Created<T> {
    /// A 2xx answer that shows what was asked.
    New(T),
    /// 409 (something with this id exists), or a 2xx answer that does not show the data it
    /// stands for: read it back to see if it is ours.
    Exists,
}

/// The subscription a create asked for.
pub(crate) struct WantedSubscription<'a> {
    /// Ours when we chose it (provisioning); `None` when Stigg assigns it.
    pub(crate) id: Option<&'a str>,
    pub(crate) customer_id: &'a str,
    pub(crate) plan_id: &'a str,
    pub(crate) billing_period: BillingPeriod,
}

impl<'a> From<&'a SubscriptionProvisioning> for WantedSubscription<'a> {
    fn from(subscription: &'a SubscriptionProvisioning) -> Self {
        Self {
            id: Some(subscription.subscription_id.as_str()),
            customer_id: subscription.customer_id.as_str(),
            plan_id: &subscription.stigg_plan_id,
            billing_period: subscription.billing_period,
        }
    }
}

/// A 2xx answer to a customer create. The id is Stigg's when it tells it, else ours. An
/// answer without the customer's data (an empty body) is checked by reading the customer
/// back; a body that is not JSON is refused.
pub(crate) fn customer_created(
    op: Operation,
    body: &[u8],
    wanted: &CustomerProvisioning,
) -> Result<Created<StiggCustomer>, StiggError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Created::Exists);
    }
    #[derive(serde::Deserialize)]
    struct MaybeEnvelope {
        data: Option<CustomerData>,
    }
    let parsed: MaybeEnvelope =
        serde_json::from_slice(body).map_err(|e| unexpected_json(op, &e))?;
    match parsed.data {
        Some(data) if data.billing_id.is_some() => {
            same_customer(&data, wanted)?;
            Ok(Created::New(StiggCustomer {
                id: data
                    .id
                    .unwrap_or_else(|| wanted.customer_id.as_str().to_owned()),
            }))
        }
        _ => Ok(Created::Exists),
    }
}

/// A 2xx answer to a subscription create: it counts when the subscription it shows has the
/// customer and plan asked for; one that shows none is read back. The id is the one Stigg
/// shows, else ours; a mismatch is reported under ours when we chose one.
pub(crate) fn subscription_created(
    op: Operation,
    data: SubscriptionProvisionData,
    wanted: &WantedSubscription<'_>,
) -> Result<Created<StiggSubscription>, StiggError> {
    let shown_id = data
        .subscription
        .as_ref()
        .and_then(|shown| shown.id.clone());
    let id = shown_id.or(data.id).or(wanted.id.map(str::to_owned));
    match data.status.as_deref() {
        Some("SUCCESS") => match (data.subscription, id) {
            (Some(shown), Some(id)) => {
                same_subscription(&shown, wanted, wanted.id.unwrap_or(&id))?;
                Ok(Created::New(StiggSubscription { id }))
            }
            (Some(_), None) => Err(invalid_response(op, "the answer names no subscription id")),
            (None, _) => Ok(Created::Exists),
        },
        Some("PAYMENT_REQUIRED") => Err(StiggError::PaymentRequired(
            id.unwrap_or_else(|| "(new)".to_owned()),
        )),
        Some(other) => Err(invalid_response(
            op,
            format!("unknown status '{}'", clean(other, 64, "")),
        )),
        None => Err(invalid_response(op, "the answer has no status")),
    }
}

pub(crate) fn unexpected_json(op: Operation, error: &serde_json::Error) -> StiggError {
    // serde's message may quote the body; keep it short.
    let why = clean(&error.to_string(), 120, "");
    invalid_response(op, format!("body is not the expected JSON ({why})"))
}

/// The customer Stigg holds is the one asked for: same billing id.
pub(crate) fn same_customer(
    data: &CustomerData,
    wanted: &CustomerProvisioning,
) -> Result<(), StiggError> {
    let expected = wanted.billing_id.as_str();
    if data.billing_id.as_deref() == Some(expected) {
        return Ok(());
    }
    Err(StiggError::Conflict {
        entity: "customer",
        id: wanted.customer_id.as_str().to_owned(),
        difference: difference("billingId", data.billing_id.as_deref(), expected),
    })
}

/// The subscription `id` Stigg holds is the one asked for: same customer, plan and (when
/// Stigg tells it) billing period.
pub(crate) fn same_subscription(
    data: &SubscriptionData,
    wanted: &WantedSubscription<'_>,
    id: &str,
) -> Result<(), StiggError> {
    let mut differences = Vec::new();
    let customer_id = wanted.customer_id;
    if data.customer_id.as_deref() != Some(customer_id) {
        differences.push(difference(
            "customerId",
            data.customer_id.as_deref(),
            customer_id,
        ));
    }
    let plan_id = wanted.plan_id;
    if data.plan_id.as_deref() != Some(plan_id) {
        differences.push(difference("planId", data.plan_id.as_deref(), plan_id));
    }
    // Only compared when Stigg tells it: its subscription shape may omit it.
    let period = wanted.billing_period.as_stigg();
    if let Some(actual) = data.billing_period.as_deref()
        && actual != period
    {
        differences.push(difference("billingPeriod", Some(actual), period));
    }
    conflict("subscription", id, differences)
}

/// The subscription a patch answered with is `id`, patched.
pub(crate) fn patched(
    data: &SubscriptionData,
    id: &str,
    patch: SubscriptionPatch,
) -> Result<(), StiggError> {
    let mut differences = same_id(data.id.as_deref(), id);
    match patch {
        SubscriptionPatch::TrialEnd(end) => {
            differences.extend(other_date(
                "trialEndDate",
                data.trial_end_date.as_deref(),
                end,
            ));
        }
        SubscriptionPatch::RemoveCancellation => {
            if let Some(date) = data.cancellation_date.as_deref() {
                differences.push(format!(
                    "cancellationDate is '{}', expected none",
                    clean(date, 40, "")
                ));
            }
        }
    }
    conflict("subscription", id, differences)
}

/// The subscription a cancel answered with is `id`, canceled as asked: `CANCELED` now, or
/// ending on the date.
pub(crate) fn canceled(
    data: &SubscriptionData,
    id: &str,
    cancellation: Cancellation,
) -> Result<(), StiggError> {
    let mut differences = same_id(data.id.as_deref(), id);
    match cancellation {
        Cancellation::Immediately { .. } => {
            if data.status.as_deref() != Some("CANCELED") {
                differences.push(difference("status", data.status.as_deref(), "CANCELED"));
            }
        }
        Cancellation::OnDate(date) => {
            differences.extend(other_date(
                "cancellationDate",
                data.cancellation_date.as_deref(),
                date,
            ));
        }
    }
    conflict("subscription", id, differences)
}

/// The customer an archive answered with is `id` (when Stigg names it).
pub(crate) fn archived(data: &CustomerData, id: &str) -> Result<(), StiggError> {
    conflict("customer", id, same_id(data.id.as_deref(), id))
}

/// No difference in `id` when Stigg leaves the id out: the URL named it.
fn same_id(shown: Option<&str>, id: &str) -> Vec<String> {
    match shown {
        Some(shown) if shown != id => vec![difference("id", Some(shown), id)],
        _ => Vec::new(),
    }
}

/// The difference when `shown` is not the instant `wanted` (to the millisecond: Stigg keeps
/// no finer).
fn other_date(field: &str, shown: Option<&str>, wanted: DateTime<Utc>) -> Option<String> {
    let same = shown
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .is_some_and(|at| at.timestamp_millis() == wanted.timestamp_millis());
    (!same).then(|| difference(field, shown, &iso(wanted)))
}

fn conflict(entity: &'static str, id: &str, differences: Vec<String>) -> Result<(), StiggError> {
    if differences.is_empty() {
        return Ok(());
    }
    Err(StiggError::Conflict {
        entity,
        id: id.to_owned(),
        difference: differences.join("; "),
    })
}

/// e.g. "billingId is 'cus_X', expected 'cus_Y'".
fn difference(field: &str, actual: Option<&str>, expected: &str) -> String {
    match actual {
        Some(actual) => format!(
            "{field} is '{}', expected '{expected}'",
            clean(actual, 100, "")
        ),
        None => format!("{field} is missing, expected '{expected}'"),
    }
}
