//! Stigg's REST v1 JSON, as far as this adapter writes and reads it.
//!
//! Responses are read leniently: unknown fields are ignored and fields we only compare are
//! optional, so that Stigg adding or omitting something does not break provisioning.

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use onboarding_domain::ports::{CustomerProvisioning, SubscriptionProvisioning};
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

/// Body of `POST /api/v1/subscriptions`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionRequest<'a> {
    pub(crate) id: &'a str,
    pub(crate) customer_id: &'a str,
    pub(crate) plan_id: &'a str,
    pub(crate) billing_period: &'static str,
    pub(crate) billing_id: &'a str,
    /// `NONE`: Stripe bills; Stigg must never collect a payment itself.
    pub(crate) payment_collection_method: &'static str,
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

impl<'a> From<&'a SubscriptionProvisioning> for SubscriptionRequest<'a> {
    fn from(subscription: &'a SubscriptionProvisioning) -> Self {
        let trial_override_configuration = subscription.trial.as_ref().map(|trial| TrialOverride {
            is_trial: true,
            trial_end_date: trial
                .ends_at
                .map(|at| at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            trial_end_behavior: "CONVERT_TO_PAID",
        });
        Self {
            id: subscription.subscription_id.as_str(),
            customer_id: subscription.customer_id.as_str(),
            plan_id: &subscription.stigg_plan_id,
            billing_period: subscription.billing_period.as_stigg(),
            billing_id: subscription.subscription_id.as_str(),
            payment_collection_method: "NONE",
            trial_override_configuration,
            metadata: BTreeMap::from([
                ("orgId", subscription.customer_id.as_str()),
                (
                    "stripeSubscriptionId",
                    subscription.subscription_id.as_str(),
                ),
                ("planCode", subscription.plan_code.as_str()),
            ]),
        }
    }
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

/// A subscription, as `GET /api/v1/subscriptions/{id}` returns it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionData {
    pub(crate) customer_id: Option<String>,
    pub(crate) plan_id: Option<String>,
    pub(crate) billing_period: Option<String>,
}
