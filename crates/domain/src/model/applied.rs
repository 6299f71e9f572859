//! What the service last applied in Stigg for one Stripe subscription, and how each move
//! changes it. Moves are decided against this record, not against a read of Stigg.

use chrono::{DateTime, Utc};

use super::{Change, Creation, PlanCode};

/// The Stigg state last applied for one Stripe subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedState {
    /// The current Stigg subscription: the Stripe subscription id when provisioned, the id
    /// Stigg assigned after a resume or a plan change.
    pub stigg_subscription_id: String,
    pub plan: PlanCode,
    pub status: AppliedStatus,
    /// The trial end last set; it stays once Stripe's trial is over, as Stigg's trial does.
    pub trial_end: Option<DateTime<Utc>>,
    pub cancellation_date: Option<DateTime<Utc>>,
    /// How many moves succeeded so far for this Stripe subscription. It tells apart the
    /// idempotency keys of two identical moves made at different times.
    pub moves_applied: u64,
}

/// Whether the current Stigg subscription is active (in trial or paid) or canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppliedStatus {
    Active,
    Canceled,
}

impl AppliedState {
    /// The state once `creation` succeeded and Stigg answered with the new subscription's
    /// id. The subscription it replaces, if any, is `previous`.
    pub fn created(
        previous: Option<&Self>,
        creation: &Creation,
        stigg_subscription_id: String,
    ) -> Self {
        Self {
            stigg_subscription_id,
            plan: creation.plan.code.clone(),
            status: AppliedStatus::Active,
            trial_end: creation.trial_end,
            cancellation_date: None,
            moves_applied: next_count(previous),
        }
    }

    /// The state once `change` succeeded on the current subscription.
    pub fn changed(&self, change: &Change) -> Self {
        let mut next = Self {
            moves_applied: next_count(Some(self)),
            ..self.clone()
        };
        match change {
            Change::PatchTrialEnd(end) => next.trial_end = Some(*end),
            Change::CancelAt(date) => next.cancellation_date = Some(*date),
            Change::RemoveCancellation => next.cancellation_date = None,
            Change::CancelNow { .. } => next.status = AppliedStatus::Canceled,
        }
        next
    }
}

fn next_count(previous: Option<&AppliedState>) -> u64 {
    previous.map_or(0, |state| state.moves_applied) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CreationKind;
    use crate::model::fixtures::{day as date, plan};

    fn creation(kind: CreationKind, trial_end: Option<DateTime<Utc>>) -> Creation {
        Creation {
            kind,
            plan: plan("pro"),
            trial_end,
        }
    }

    /// Provisioned in trial until day 14.
    fn provisioned() -> AppliedState {
        AppliedState::created(
            None,
            &creation(CreationKind::Provision, Some(date(14))),
            "sub_1".into(),
        )
    }

    #[test]
    fn a_created_subscription_is_the_current_one_without_cancellation() {
        let first = provisioned();
        assert_eq!(first.stigg_subscription_id, "sub_1");
        assert_eq!(first.plan.as_str(), "pro");
        assert_eq!(first.status, AppliedStatus::Active);
        assert_eq!(first.trial_end, Some(date(14)));
        assert_eq!(first.moves_applied, 1);

        let cancelling = first.changed(&Change::CancelAt(date(20)));
        let replaced = first.changed(&Change::CancelNow {
            revoke_entitlements: true,
        });
        for previous in [cancelling, replaced] {
            let next = AppliedState::created(
                Some(&previous),
                &creation(CreationKind::Resume, None),
                "stigg-2".into(),
            );
            assert_eq!(next.stigg_subscription_id, "stigg-2");
            assert_eq!(next.status, AppliedStatus::Active);
            assert_eq!((next.trial_end, next.cancellation_date), (None, None));
            assert_eq!(next.moves_applied, 3);
        }
    }

    #[test]
    fn each_change_sets_its_own_field_and_counts_one_move() {
        let start = provisioned();
        let trial = start.changed(&Change::PatchTrialEnd(date(28)));
        assert_eq!(
            trial,
            AppliedState {
                trial_end: Some(date(28)),
                moves_applied: 2,
                ..start.clone()
            }
        );
        let cancelling = trial.changed(&Change::CancelAt(date(21)));
        assert_eq!(cancelling.cancellation_date, Some(date(21)));
        let kept = cancelling.changed(&Change::RemoveCancellation);
        assert_eq!(kept.cancellation_date, None);
        assert_eq!(kept.moves_applied, 4);
        let canceled = kept.changed(&Change::CancelNow {
            revoke_entitlements: false,
        });
        assert_eq!(canceled.status, AppliedStatus::Canceled);
        assert_eq!(canceled.stigg_subscription_id, "sub_1");
    }
}
