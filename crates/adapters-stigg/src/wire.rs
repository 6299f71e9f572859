//! Stigg's REST v1 JSON, as far as this adapter writes and reads it.
//!
//! Responses are read leniently: unknown fields are ignored and fields we only compare are
//! optional, so that Stigg adding or omitting something does not break provisioning.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use onboarding_domain::model::{BillingPeriod, OrgId, PlanCode, StripeSubscriptionId};
use onboarding_domain::ports::{
    Cancellation, CustomerProvisioning, SubscriptionCreation, SubscriptionPatch,
    SubscriptionProvisioning,
};
use serde::{Deserialize, Serialize};

/// Body of `POST /api/v1/customers`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CustomerRequest<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<&'a str>,
    pub(crate) billing_id: &'a str,
    /// Stigg accepts string values only.
    pub(crate) metadata: BTreeMap<&'static str, &'a str>,
}

impl<'a> From<&'a CustomerProvisioning> for CustomerRequest<'a> {
    fn from(customer: &'a CustomerProvisioning) -> Self {
        let mut metadata = BTreeMap::from([
            ("orgId", customer.customer_id.as_str()),
            ("stripeCustomerId", customer.billing_id.as_str()),
        ]);
        if let Some(tenant) = &customer.tenant_id {
            metadata.insert("tenantId", tenant.as_str());
        }
        Self {
            id: customer.customer_id.as_str(),
            name: &customer.name,
            email: customer.email.as_deref(),
            billing_id: customer.billing_id.as_str(),
            metadata,
        }
    }
}

/// Body of `POST /api/v1/subscriptions`, for a provisioning (with our id) or a creation
/// after a resume or a plan change (Stigg assigns the id).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<&'a str>,
    pub(crate) customer_id: &'a str,
    pub(crate) plan_id: &'a str,
    pub(crate) billing_period: &'static str,
    pub(crate) billing_id: &'a str,
    /// `NONE`: Stripe bills; Stigg must never collect a payment itself.
    pub(crate) payment_collection_method: &'static str,
    /// `IMMEDIATE` on a creation: Stripe has already decided when the change takes effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) schedule_strategy: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) trial_override_configuration: Option<TrialOverride>,
    pub(crate) metadata: BTreeMap<&'static str, &'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TrialOverride {
    pub(crate) is_trial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) trial_end_date: Option<String>,
    /// The Stripe trial converts to paid in Stripe; Stigg follows.
    pub(crate) trial_end_behavior: &'static str,
}

impl TrialOverride {
    fn until(end: Option<DateTime<Utc>>) -> Self {
        Self {
            is_trial: true,
            trial_end_date: end.map(iso),
            trial_end_behavior: "CONVERT_TO_PAID",
        }
    }
}

/// The fields both kinds of subscription create share.
struct SubscriptionFields<'a> {
    customer_id: &'a OrgId,
    stripe_subscription_id: &'a StripeSubscriptionId,
    plan_code: &'a PlanCode,
    stigg_plan_id: &'a str,
    billing_period: BillingPeriod,
}

impl<'a> SubscriptionRequest<'a> {
    fn new(fields: SubscriptionFields<'a>, trial: Option<TrialOverride>) -> Self {
        let billing_id = fields.stripe_subscription_id.as_str();
        Self {
            id: None,
            customer_id: fields.customer_id.as_str(),
            plan_id: fields.stigg_plan_id,
            billing_period: fields.billing_period.as_stigg(),
            billing_id,
            payment_collection_method: "NONE",
            schedule_strategy: None,
            trial_override_configuration: trial,
            metadata: BTreeMap::from([
                ("orgId", fields.customer_id.as_str()),
                ("stripeSubscriptionId", billing_id),
                ("planCode", fields.plan_code.as_str()),
            ]),
        }
    }
}

impl<'a> From<&'a SubscriptionProvisioning> for SubscriptionRequest<'a> {
    fn from(subscription: &'a SubscriptionProvisioning) -> Self {
        let fields = SubscriptionFields {
            customer_id: &subscription.customer_id,
            stripe_subscription_id: &subscription.subscription_id,
            plan_code: &subscription.plan_code,
            stigg_plan_id: &subscription.stigg_plan_id,
            billing_period: subscription.billing_period,
        };
        let trial = subscription
            .trial
            .as_ref()
            .map(|trial| TrialOverride::until(trial.ends_at));
        Self {
            id: Some(subscription.subscription_id.as_str()),
            ..Self::new(fields, trial)
        }
    }
}

impl<'a> From<&'a SubscriptionCreation> for SubscriptionRequest<'a> {
    fn from(subscription: &'a SubscriptionCreation) -> Self {
        let fields = SubscriptionFields {
            customer_id: &subscription.customer_id,
            stripe_subscription_id: &subscription.stripe_subscription_id,
            plan_code: &subscription.plan.code,
            stigg_plan_id: &subscription.plan.stigg_plan_id,
            billing_period: subscription.plan.billing_period,
        };
        let trial = subscription
            .trial_end
            .map(|end| TrialOverride::until(Some(end)));
        Self {
            schedule_strategy: Some("IMMEDIATE"),
            ..Self::new(fields, trial)
        }
    }
}

/// Body of `PATCH /api/v1/subscriptions/{id}`: only the field that changes.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum PatchRequest {
    TrialEnd {
        #[serde(rename = "trialEndDate")]
        trial_end_date: String,
    },
    /// `{"cancellationDate": null}`.
    RemoveCancellation {
        #[serde(rename = "cancellationDate")]
        cancellation_date: (),
    },
}

impl From<SubscriptionPatch> for PatchRequest {
    fn from(patch: SubscriptionPatch) -> Self {
        match patch {
            SubscriptionPatch::TrialEnd(end) => Self::TrialEnd {
                trial_end_date: iso(end),
            },
            SubscriptionPatch::RemoveCancellation => Self::RemoveCancellation {
                cancellation_date: (),
            },
        }
    }
}

/// Body of `POST /api/v1/subscriptions/{id}/cancel`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CancelRequest {
    pub(crate) cancellation_time: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) end_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cancellation_action: Option<&'static str>,
}

impl From<Cancellation> for CancelRequest {
    fn from(cancellation: Cancellation) -> Self {
        match cancellation {
            Cancellation::Immediately {
                revoke_entitlements,
            } => Self {
                cancellation_time: "IMMEDIATE",
                end_date: None,
                cancellation_action: Some(if revoke_entitlements {
                    "REVOKE_ENTITLEMENTS"
                } else {
                    "DEFAULT"
                }),
            },
            Cancellation::OnDate(date) => Self {
                cancellation_time: "SPECIFIC_DATE",
                end_date: Some(iso(date)),
                cancellation_action: None,
            },
        }
    }
}

/// ISO 8601 in UTC, as Stigg reads dates: `2030-01-15T00:00:00Z`.
pub(crate) fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Every success answer: `{"data": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) data: T,
}

/// A customer, as `POST` and `GET /api/v1/customers` return it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CustomerData {
    pub(crate) id: Option<String>,
    pub(crate) billing_id: Option<String>,
}

/// The answer of `POST /api/v1/subscriptions`.
#[derive(Debug, Deserialize)]
pub(crate) struct SubscriptionProvisionData {
    pub(crate) id: Option<String>,
    pub(crate) status: Option<String>,
    /// The subscription as created (or as an idempotent replay remembers it).
    pub(crate) subscription: Option<SubscriptionData>,
}

/// A subscription, as `GET /api/v1/subscriptions/{id}` (and every call that changes one)
/// returns it. A `null` date reads as absent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionData {
    pub(crate) id: Option<String>,
    pub(crate) customer_id: Option<String>,
    pub(crate) plan_id: Option<String>,
    pub(crate) billing_period: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) trial_end_date: Option<String>,
    pub(crate) cancellation_date: Option<String>,
}
