//! Rows of the target table: what Stigg must have for each Stripe status.

use super::{active, catalog, day, price_id, subscription};
use crate::model::{
    Move, OrgId, StiggTarget, StripeCustomer, StripeCustomerId, StripeSubscription, Untouched,
};
use crate::use_cases::sync_subscription::{SuspendedPolicy, SyncFailure, customer_move, target};

fn target_of(subscription: &StripeSubscription) -> Result<StiggTarget, SyncFailure> {
    target(subscription, &catalog(), SuspendedPolicy::default())
}

#[test]
fn trialing_is_active_on_the_price_plan_in_trial_until_trial_end() {
    let mut trialing = subscription("trialing");
    trialing.trial_end = Some(day(14));
    assert_eq!(
        target_of(&trialing),
        Ok(active("starter", Some(day(14)), None))
    );
}

#[test]
fn active_and_past_due_are_active_on_the_price_plan_without_trial() {
    for status in ["active", "past_due"] {
        let mut paid = subscription(status);
        // Stripe keeps the end of a trial that is over.
        paid.trial_end = Some(day(3));
        assert_eq!(
            target_of(&paid),
            Ok(active("starter", None, None)),
            "{status}"
        );
    }
}

#[test]
fn the_plan_is_the_one_listing_the_price_else_the_lookup_key() {
    let mut listed = subscription("active");
    listed.first_item.price.lookup_key = Some("pro".into());
    assert_eq!(target_of(&listed), Ok(active("starter", None, None)));

    let mut by_key = subscription("active");
    by_key.first_item.price.id = price_id("price_unlisted");
    by_key.first_item.price.lookup_key = Some("pro".into());
    assert_eq!(target_of(&by_key), Ok(active("pro", None, None)));
}

#[test]
fn cancel_at_is_the_cancellation_date() {
    let mut cancelling = subscription("active");
    cancelling.cancel_at = Some(day(9));
    assert_eq!(
        target_of(&cancelling),
        Ok(active("starter", None, Some(day(9))))
    );
}

#[test]
fn cancel_at_period_end_cancels_at_the_first_items_period_end() {
    let mut cancelling = subscription("trialing");
    cancelling.trial_end = Some(day(14));
    cancelling.cancel_at_period_end = true;
    assert_eq!(
        target_of(&cancelling),
        Ok(active("starter", Some(day(14)), Some(day(21))))
    );
}

#[test]
fn cancel_at_period_end_falls_back_to_the_subscriptions_period_end() {
    let mut cancelling = subscription("active");
    cancelling.cancel_at_period_end = true;
    cancelling.first_item.current_period_end = None;
    assert_eq!(
        target_of(&cancelling),
        Ok(active("starter", None, Some(day(20))))
    );
}

#[test]
fn cancel_at_wins_over_cancel_at_period_end() {
    let mut cancelling = subscription("active");
    cancelling.cancel_at = Some(day(9));
    cancelling.cancel_at_period_end = true;
    assert_eq!(
        target_of(&cancelling),
        Ok(active("starter", None, Some(day(9))))
    );
}

#[test]
fn canceled_and_incomplete_expired_are_canceled_now() {
    for status in ["canceled", "incomplete_expired"] {
        assert_eq!(
            target_of(&subscription(status)),
            Ok(StiggTarget::Canceled {
                revoke_entitlements: false
            }),
            "{status}"
        );
    }
}

#[test]
fn paused_and_unpaid_are_canceled_revoking_entitlements_by_default() {
    assert_eq!(SuspendedPolicy::default(), SuspendedPolicy::Revoke);
    for status in ["paused", "unpaid"] {
        assert_eq!(
            target_of(&subscription(status)),
            Ok(StiggTarget::Canceled {
                revoke_entitlements: true
            }),
            "{status}"
        );
    }
}

#[test]
fn paused_and_unpaid_are_left_as_they_are_when_kept() {
    for status in ["paused", "unpaid"] {
        assert_eq!(
            target(&subscription(status), &catalog(), SuspendedPolicy::Keep),
            Ok(StiggTarget::Untouched(Untouched::SuspendedKept)),
            "{status}"
        );
    }
}

#[test]
fn incomplete_is_nothing_yet() {
    assert_eq!(
        target_of(&subscription("incomplete")),
        Ok(StiggTarget::Untouched(Untouched::Incomplete))
    );
}

#[test]
fn unknown_price_maps_to_no_plan_code() {
    let mut unknown = subscription("active");
    unknown.first_item.price.id = price_id("price_gone");
    unknown.first_item.price.lookup_key = Some("not_in_catalog".into());
    let failure = target_of(&unknown);
    assert_eq!(
        failure,
        Err(SyncFailure::PriceWithoutPlan {
            price_id: price_id("price_gone")
        })
    );
    assert_eq!(
        failure.err().map(|e| e.to_string()).as_deref(),
        Some("price 'price_gone' maps to no plan code")
    );
}

#[test]
fn unknown_price_does_not_hold_back_a_cancellation() {
    let mut canceled = subscription("canceled");
    canceled.first_item.price.id = price_id("price_gone");
    assert!(matches!(
        target_of(&canceled),
        Ok(StiggTarget::Canceled { .. })
    ));
}

#[test]
fn trialing_without_trial_end_fails() {
    assert_eq!(
        target_of(&subscription("trialing")),
        Err(SyncFailure::TrialWithoutEnd)
    );
}

#[test]
fn cancel_at_period_end_without_any_period_end_fails() {
    let mut cancelling = subscription("active");
    cancelling.cancel_at_period_end = true;
    cancelling.first_item.current_period_end = None;
    cancelling.current_period_end = None;
    assert_eq!(target_of(&cancelling), Err(SyncFailure::PeriodEndMissing));
}

#[test]
fn a_status_stripe_adds_later_fails_rather_than_guess() {
    assert_eq!(
        target_of(&subscription("frozen")),
        Err(SyncFailure::UnknownStatus("frozen".into()))
    );
}

#[test]
fn deleted_customer_is_archived_when_ever_provisioned() {
    let org = OrgId::parse("org_1").unwrap();
    let customer = |deleted| StripeCustomer {
        id: StripeCustomerId::parse("cus_1").unwrap(),
        deleted,
    };
    assert_eq!(
        customer_move(&customer(true), &org, true),
        Some(Move::ArchiveCustomer {
            customer_id: org.clone()
        })
    );
    assert_eq!(customer_move(&customer(true), &org, false), None);
    assert_eq!(customer_move(&customer(false), &org, true), None);
}
