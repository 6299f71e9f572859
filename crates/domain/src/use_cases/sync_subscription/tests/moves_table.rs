//! Rows of the moves table: which Stigg calls close each difference.

use chrono::{DateTime, Utc};

use super::{active, applied, day, plan};
use crate::model::{
    AppliedState, AppliedStatus, Change, Creation, CreationKind, Move, StiggTarget, Untouched,
};
use crate::use_cases::sync_subscription::moves;

fn create(kind: CreationKind, plan_code: &str, trial_end: Option<DateTime<Utc>>) -> Move {
    Move::Create(Creation {
        kind,
        plan: plan(plan_code),
        trial_end,
    })
}

fn canceled(plan_code: &str) -> AppliedState {
    AppliedState {
        status: AppliedStatus::Canceled,
        ..applied(plan_code)
    }
}

#[test]
fn should_be_active_never_provisioned_provisions() {
    assert_eq!(
        moves(None, &active("starter", Some(day(14)), None)),
        [create(CreationKind::Provision, "starter", Some(day(14)))]
    );
    // The provisioned subscription has no cancellation date yet.
    assert_eq!(
        moves(None, &active("starter", None, Some(day(21)))),
        [
            create(CreationKind::Provision, "starter", None),
            Move::Change(Change::CancelAt(day(21)))
        ]
    );
}

#[test]
fn should_be_active_last_stigg_subscription_canceled_creates_a_new_one() {
    assert_eq!(
        moves(Some(&canceled("starter")), &active("starter", None, None)),
        [create(CreationKind::Resume, "starter", None)]
    );
    // Resumed on another plan: one new subscription, on the target plan.
    assert_eq!(
        moves(
            Some(&canceled("starter")),
            &active("pro", Some(day(14)), Some(day(21)))
        ),
        [
            create(CreationKind::Resume, "pro", Some(day(14))),
            Move::Change(Change::CancelAt(day(21)))
        ]
    );
}

#[test]
fn plan_code_changed_creates_a_subscription_on_the_new_plan() {
    assert_eq!(
        moves(Some(&applied("starter")), &active("pro", None, None)),
        [create(CreationKind::PlanChange, "pro", None)]
    );
    let mut cancelling = applied("starter");
    cancelling.cancellation_date = Some(day(21));
    assert_eq!(
        moves(
            Some(&cancelling),
            &active("pro", Some(day(14)), Some(day(21)))
        ),
        [
            create(CreationKind::PlanChange, "pro", Some(day(14))),
            Move::Change(Change::CancelAt(day(21)))
        ]
    );
}

#[test]
fn trial_end_changed_still_trialing_patches_the_trial_end() {
    let mut trialing = applied("starter");
    trialing.trial_end = Some(day(14));
    assert_eq!(
        moves(Some(&trialing), &active("starter", Some(day(28)), None)),
        [Move::Change(Change::PatchTrialEnd(day(28)))]
    );
}

#[test]
fn trial_over_in_stripe_needs_no_call() {
    let mut trialing = applied("starter");
    trialing.trial_end = Some(day(14));
    assert_eq!(moves(Some(&trialing), &active("starter", None, None)), []);
}

#[test]
fn cancellation_date_set_cancels_at_that_date() {
    assert_eq!(
        moves(
            Some(&applied("starter")),
            &active("starter", None, Some(day(21)))
        ),
        [Move::Change(Change::CancelAt(day(21)))]
    );
}

#[test]
fn cancellation_date_moved_cancels_at_the_new_date() {
    let mut cancelling = applied("starter");
    cancelling.cancellation_date = Some(day(21));
    assert_eq!(
        moves(Some(&cancelling), &active("starter", None, Some(day(9)))),
        [Move::Change(Change::CancelAt(day(9)))]
    );
}

#[test]
fn cancellation_date_removed_patches_it_away() {
    let mut cancelling = applied("starter");
    cancelling.cancellation_date = Some(day(21));
    assert_eq!(
        moves(Some(&cancelling), &active("starter", None, None)),
        [Move::Change(Change::RemoveCancellation)]
    );
}

#[test]
fn should_be_canceled_cancels_now() {
    for revoke_entitlements in [false, true] {
        assert_eq!(
            moves(
                Some(&applied("starter")),
                &StiggTarget::Canceled {
                    revoke_entitlements
                }
            ),
            [Move::Change(Change::CancelNow {
                revoke_entitlements
            })]
        );
    }
}

#[test]
fn nothing_differs_no_move() {
    let mut state = applied("starter");
    assert_eq!(moves(Some(&state), &active("starter", None, None)), []);
    state.trial_end = Some(day(14));
    state.cancellation_date = Some(day(21));
    assert_eq!(
        moves(
            Some(&state),
            &active("starter", Some(day(14)), Some(day(21)))
        ),
        []
    );
}

#[test]
fn trial_and_cancellation_changed_together_are_two_moves() {
    let mut trialing = applied("starter");
    trialing.trial_end = Some(day(14));
    assert_eq!(
        moves(
            Some(&trialing),
            &active("starter", Some(day(7)), Some(day(7)))
        ),
        [
            Move::Change(Change::PatchTrialEnd(day(7))),
            Move::Change(Change::CancelAt(day(7)))
        ]
    );
}

#[test]
fn canceled_and_already_canceled_or_never_provisioned_no_move() {
    for revoke_entitlements in [false, true] {
        let target = StiggTarget::Canceled {
            revoke_entitlements,
        };
        assert_eq!(moves(Some(&canceled("starter")), &target), []);
        assert_eq!(moves(None, &target), []);
    }
}

#[test]
fn untouched_leaves_any_state_alone() {
    for why in [Untouched::Incomplete, Untouched::SuspendedKept] {
        let target = StiggTarget::Untouched(why);
        assert_eq!(moves(Some(&applied("starter")), &target), []);
        assert_eq!(moves(Some(&canceled("starter")), &target), []);
        assert_eq!(moves(None, &target), []);
    }
}
