//! The contract's two tables, one test per row, and their edge cases.

mod moves_table;
mod run;
mod target_table;

use chrono::{DateTime, Utc};

use crate::model::fixtures::{code, day, plan, price_id};
use crate::model::{
    ActiveTarget, AppliedState, AppliedStatus, PlanCatalog, StiggTarget, StripeCustomerId,
    StripePrice, StripeSubscription, StripeSubscriptionId, StripeSubscriptionItem,
    SubscriptionStatus,
};

/// `starter` lists its price; `pro` lists none and is found by a price's lookup key.
fn catalog() -> PlanCatalog {
    PlanCatalog::new([plan("starter"), plan("pro")])
        .and_then(|c| c.with_stripe_prices([(code("starter"), [price_id("price_starter")])]))
        .unwrap()
}

/// A subscription on `starter`'s price, with no trial and no cancellation.
fn subscription(status: &str) -> StripeSubscription {
    StripeSubscription {
        id: StripeSubscriptionId::parse("sub_1").unwrap(),
        customer: StripeCustomerId::parse("cus_1").unwrap(),
        status: SubscriptionStatus::parse(status),
        trial_end: None,
        cancel_at: None,
        cancel_at_period_end: false,
        current_period_end: Some(day(20)),
        first_item: StripeSubscriptionItem {
            price: StripePrice {
                id: price_id("price_starter"),
                lookup_key: None,
            },
            current_period_end: Some(day(21)),
        },
    }
}

fn active(
    plan_code: &str,
    trial_end: Option<DateTime<Utc>>,
    cancellation_date: Option<DateTime<Utc>>,
) -> StiggTarget {
    StiggTarget::Active(ActiveTarget {
        plan: plan(plan_code),
        trial_end,
        cancellation_date,
    })
}

/// An active Stigg subscription on `plan_code`, paid, with no cancellation date.
fn applied(plan_code: &str) -> AppliedState {
    AppliedState {
        stigg_subscription_id: "sub_1".into(),
        plan: code(plan_code),
        status: AppliedStatus::Active,
        trial_end: None,
        cancellation_date: None,
        moves_applied: 1,
    }
}
