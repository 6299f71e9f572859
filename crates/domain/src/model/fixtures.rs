//! Values the model's and the use cases' tests build on.

use chrono::{DateTime, TimeZone, Utc};

use super::{BillingPeriod, Plan, PlanCode, StripePriceId};

/// Midnight UTC on a day of January 2031.
pub(crate) fn day(n: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 1, n, 0, 0, 0)
        .single()
        .unwrap_or_else(|| panic!("no day {n}"))
}

pub(crate) fn code(raw: &str) -> PlanCode {
    PlanCode::parse(raw).unwrap()
}

/// The catalog entry for `raw`, its Stigg plan id `stigg-{raw}`.
pub(crate) fn plan(raw: &str) -> Plan {
    Plan {
        code: code(raw),
        stigg_plan_id: format!("stigg-{raw}"),
        billing_period: BillingPeriod::Monthly,
    }
}

pub(crate) fn price_id(raw: &str) -> StripePriceId {
    StripePriceId::parse(raw).unwrap()
}
