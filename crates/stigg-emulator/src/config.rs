//! What an emulator starts with: the accepted API key, the plan catalog and the rate limit.

use serde::{Deserialize, Serialize};

use crate::rate_limit::RateLimit;

/// The API key the emulator accepts unless told otherwise.
pub const DEFAULT_API_KEY: &str = "emulator-key";

/// Start-up settings of an [`Emulator`](crate::Emulator).
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The only `X-API-KEY` value accepted; anything else is answered 401.
    pub api_key: String,
    /// Plans that subscriptions may reference; any other `planId` is answered 404 `PlanNotFound`.
    pub plans: Vec<PlanSpec>,
    /// Rate limit in force from the start; `None` turns rate limiting off.
    pub rate_limit: Option<RateLimit>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            api_key: DEFAULT_API_KEY.to_owned(),
            plans: PlanSpec::default_catalog(),
            rate_limit: None,
        }
    }
}

/// One plan of the seeded catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSpec {
    /// Stigg plan id, as sent in `planId`.
    pub id: String,
    pub pricing: Pricing,
    /// Billing periods a subscription to this plan may use.
    pub billing_periods: Vec<BillingPeriod>,
}

impl PlanSpec {
    /// A free plan, offered monthly and annually.
    pub fn free(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            pricing: Pricing::Free,
            billing_periods: vec![BillingPeriod::Monthly, BillingPeriod::Annually],
        }
    }

    /// A paid plan offered with the given billing periods.
    pub fn paid(id: impl Into<String>, billing_periods: &[BillingPeriod]) -> Self {
        Self {
            id: id.into(),
            pricing: Pricing::Paid,
            billing_periods: billing_periods.to_vec(),
        }
    }

    /// The catalog [`EmulatorConfig::default`] seeds:
    ///
    /// | id | pricing | billing periods |
    /// | --- | --- | --- |
    /// | `plan-free` | free | monthly, annually |
    /// | `plan-starter` | paid | monthly, annually |
    /// | `plan-pro` | paid | monthly, annually |
    /// | `plan-business` | paid | annually only |
    pub fn default_catalog() -> Vec<Self> {
        use BillingPeriod::{Annually, Monthly};
        vec![
            Self::free("plan-free"),
            Self::paid("plan-starter", &[Monthly, Annually]),
            Self::paid("plan-pro", &[Monthly, Annually]),
            Self::paid("plan-business", &[Annually]),
        ]
    }
}

/// Whether a plan costs money; paid plans may answer `PAYMENT_REQUIRED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Pricing {
    Free,
    Paid,
}

impl Pricing {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Free => "FREE",
            Self::Paid => "PAID",
        }
    }
}

/// Stigg's `billingPeriod` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillingPeriod {
    Monthly,
    Annually,
}

impl BillingPeriod {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "MONTHLY",
            Self::Annually => "ANNUALLY",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "MONTHLY" => Some(Self::Monthly),
            "ANNUALLY" => Some(Self::Annually),
            _ => None,
        }
    }
}
