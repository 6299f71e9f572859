//! The changes the lifecycle sync makes in Stigg, one Stigg call (or one provisioning) each.

use chrono::{DateTime, Utc};

use super::{AppliedState, OrgId, Plan, StripeSubscriptionId};

/// One change to make in Stigg. Moves on the subscription ([`Move::Change`]) act on the one
/// the applied state names once the moves before them succeeded, since a move that creates
/// a subscription learns its id only from Stigg's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    Create(Creation),
    Change(Change),
    /// Archive the organization's Stigg customer (its id is the organization id); Stigg
    /// cancels every subscription it has.
    ArchiveCustomer {
        customer_id: OrgId,
    },
}

/// A subscription to create in Stigg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creation {
    pub kind: CreationKind,
    pub plan: Plan,
    /// Set when the subscription starts in trial, to the trial's end.
    pub trial_end: Option<DateTime<Utc>>,
}

/// Why a subscription is created, which decides how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreationKind {
    /// Never provisioned: the provisioning flow (the customer if needed, and a subscription
    /// whose id is the Stripe subscription's).
    Provision,
    /// Our last Stigg subscription was canceled and Stripe's is active again: a new one,
    /// with an id Stigg assigns (the canceled one keeps the Stripe id).
    Resume,
    /// The plan changed, which Stigg cannot patch: a new subscription, started at once, that
    /// replaces the customer's active one.
    PlanChange,
}

/// A change to the current Stigg subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    PatchTrialEnd(DateTime<Utc>),
    /// Set or move the cancellation date (a cancel at a specific date).
    CancelAt(DateTime<Utc>),
    /// Take the cancellation date back.
    RemoveCancellation,
    /// Cancel immediately. Stigg's "already canceled or expired" counts as done.
    CancelNow {
        revoke_entitlements: bool,
    },
}

impl Move {
    /// The `Idempotency-Key` of this move, when it is the next one for `subscription` after
    /// `applied` (none: never provisioned).
    ///
    /// `sync:{stripe subscription}:{moves applied so far}:{kind}[:{values}]`. Every retry of
    /// a move is decided from the same recorded state, so it sends the same key and Stigg
    /// replays its answer instead of acting twice. Any other move differs in its kind or
    /// values, or comes after more moves were recorded, so it never gets a replay meant for
    /// another: the count tells apart a move that repeats an earlier one, such as a
    /// cancellation date set again after it was taken back, within Stigg's 24 h replay window.
    /// Dates are Unix seconds.
    ///
    /// Archiving is the customer's, whichever subscription asks for it: `archive:{org id}`.
    pub fn idempotency_key(
        &self,
        subscription: &StripeSubscriptionId,
        applied: Option<&AppliedState>,
    ) -> String {
        let prefix = format!(
            "sync:{subscription}:{}",
            applied.map_or(0, |state| state.moves_applied)
        );
        match self {
            Self::Create(creation) => {
                let kind = match creation.kind {
                    CreationKind::Provision => "provision",
                    CreationKind::Resume => "resume",
                    CreationKind::PlanChange => "plan-change",
                };
                let trial = creation
                    .trial_end
                    .map_or_else(|| "-".to_owned(), |end| end.timestamp().to_string());
                format!("{prefix}:{kind}:{}:{trial}", creation.plan.code)
            }
            Self::Change(Change::PatchTrialEnd(end)) => {
                format!("{prefix}:trial-end:{}", end.timestamp())
            }
            Self::Change(Change::CancelAt(date)) => {
                format!("{prefix}:cancel-at:{}", date.timestamp())
            }
            Self::Change(Change::RemoveCancellation) => format!("{prefix}:remove-cancellation"),
            Self::Change(Change::CancelNow {
                revoke_entitlements,
            }) => {
                let action = if *revoke_entitlements {
                    "revoke"
                } else {
                    "default"
                };
                format!("{prefix}:cancel-now:{action}")
            }
            Self::ArchiveCustomer { customer_id } => archive_key(customer_id),
        }
    }
}

/// The `Idempotency-Key` of archiving `customer_id`: the customer's own, whichever event or
/// subscription asks for it.
pub fn archive_key(customer_id: &OrgId) -> String {
    format!("archive:{customer_id}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::model::AppliedStatus;
    use crate::model::fixtures::{day as date, plan};

    fn sub() -> StripeSubscriptionId {
        StripeSubscriptionId::parse("sub_1").unwrap()
    }

    fn state(moves_applied: u64) -> AppliedState {
        AppliedState {
            stigg_subscription_id: "sub_1".into(),
            plan: plan("starter").code,
            status: AppliedStatus::Active,
            trial_end: None,
            cancellation_date: None,
            moves_applied,
        }
    }

    fn every_kind_of_move() -> Vec<Move> {
        let create = |kind, code, trial_end| {
            Move::Create(Creation {
                kind,
                plan: plan(code),
                trial_end,
            })
        };
        vec![
            create(CreationKind::Provision, "starter", None),
            create(CreationKind::Provision, "starter", Some(date(14))),
            create(CreationKind::Provision, "pro", None),
            create(CreationKind::Resume, "starter", None),
            create(CreationKind::PlanChange, "starter", None),
            Move::Change(Change::PatchTrialEnd(date(14))),
            Move::Change(Change::PatchTrialEnd(date(15))),
            Move::Change(Change::CancelAt(date(14))),
            Move::Change(Change::CancelAt(date(15))),
            Move::Change(Change::RemoveCancellation),
            Move::Change(Change::CancelNow {
                revoke_entitlements: false,
            }),
            Move::Change(Change::CancelNow {
                revoke_entitlements: true,
            }),
        ]
    }

    #[test]
    fn keys_name_the_subscription_the_moves_so_far_the_kind_and_the_values() {
        let provision = Move::Create(Creation {
            kind: CreationKind::Provision,
            plan: plan("starter"),
            trial_end: Some(date(14)),
        });
        assert_eq!(
            provision.idempotency_key(&sub(), None),
            format!("sync:sub_1:0:provision:starter:{}", date(14).timestamp())
        );
        assert_eq!(
            Move::Change(Change::CancelAt(date(15))).idempotency_key(&sub(), Some(&state(3))),
            format!("sync:sub_1:3:cancel-at:{}", date(15).timestamp())
        );
        let archive = Move::ArchiveCustomer {
            customer_id: OrgId::parse("org_1").unwrap(),
        };
        assert_eq!(
            archive.idempotency_key(&sub(), Some(&state(3))),
            "archive:org_1"
        );
    }

    #[test]
    fn a_retry_repeats_its_key_and_any_other_move_gets_another() {
        let keys_after = |applied: Option<AppliedState>| -> Vec<String> {
            every_kind_of_move()
                .iter()
                .map(|mv| mv.idempotency_key(&sub(), applied.as_ref()))
                .collect()
        };
        assert_eq!(keys_after(Some(state(1))), keys_after(Some(state(1))));

        let keys: Vec<String> = [None, Some(state(1)), Some(state(2))]
            .into_iter()
            .flat_map(keys_after)
            .collect();
        let distinct: HashSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:#?}");
    }
}
