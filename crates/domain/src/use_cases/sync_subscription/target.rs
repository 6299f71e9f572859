//! What Stigg must have, from what Stripe answers now.

use chrono::{DateTime, Utc};

use super::{SuspendedPolicy, SyncFailure};
use crate::model::{
    ActiveTarget, PlanCatalog, StiggTarget, StripeSubscription, SubscriptionStatus, Untouched,
};

/// The Stigg state `subscription` calls for.
///
/// The plan is looked up only for a subscription that stays active, so a price the catalog
/// lacks never holds back a cancellation. A status Stripe may add later fails rather than
/// guess whether it grants access.
pub fn target(
    subscription: &StripeSubscription,
    catalog: &PlanCatalog,
    suspended: SuspendedPolicy,
) -> Result<StiggTarget, SyncFailure> {
    match &subscription.status {
        SubscriptionStatus::Trialing | SubscriptionStatus::Active | SubscriptionStatus::PastDue => {
            active(subscription, catalog).map(StiggTarget::Active)
        }
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired => {
            Ok(StiggTarget::Canceled {
                revoke_entitlements: false,
            })
        }
        SubscriptionStatus::Paused | SubscriptionStatus::Unpaid => Ok(match suspended {
            SuspendedPolicy::Revoke => StiggTarget::Canceled {
                revoke_entitlements: true,
            },
            SuspendedPolicy::Keep => StiggTarget::Untouched(Untouched::SuspendedKept),
        }),
        SubscriptionStatus::Incomplete => Ok(StiggTarget::Untouched(Untouched::Incomplete)),
        SubscriptionStatus::Other(raw) => Err(SyncFailure::UnknownStatus(raw.clone())),
    }
}

fn active(
    subscription: &StripeSubscription,
    catalog: &PlanCatalog,
) -> Result<ActiveTarget, SyncFailure> {
    let price = &subscription.first_item.price;
    let plan = catalog
        .plan_for_price(price)
        .ok_or_else(|| SyncFailure::PriceWithoutPlan {
            price_id: price.id.clone(),
        })?;
    // Stripe always dates a trial; without its end Stigg would pick the plan's default
    // length, which is not what the customer was given.
    let trial_end = match subscription.status {
        SubscriptionStatus::Trialing => {
            Some(subscription.trial_end.ok_or(SyncFailure::TrialWithoutEnd)?)
        }
        _ => None,
    };
    Ok(ActiveTarget {
        plan: plan.clone(),
        trial_end,
        cancellation_date: cancellation_date(subscription)?,
    })
}

/// A date set explicitly wins; otherwise the end of the current period when the subscription
/// cancels at period end. Newer Stripe API versions give the period only on the items.
fn cancellation_date(
    subscription: &StripeSubscription,
) -> Result<Option<DateTime<Utc>>, SyncFailure> {
    if subscription.cancel_at.is_some() || !subscription.cancel_at_period_end {
        return Ok(subscription.cancel_at);
    }
    subscription
        .first_item
        .current_period_end
        .or(subscription.current_period_end)
        .map(Some)
        .ok_or(SyncFailure::PeriodEndMissing)
}
