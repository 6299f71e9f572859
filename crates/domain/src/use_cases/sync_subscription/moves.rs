//! The Stigg calls that take what was last applied to the target.

use chrono::{DateTime, Utc};

use crate::model::{
    ActiveTarget, AppliedState, AppliedStatus, Change, Creation, CreationKind, Move, OrgId,
    StiggTarget, StripeCustomer,
};

/// The moves, in the order to apply them, that take Stigg from `last_applied` (none: never
/// provisioned) to `target`. Empty when nothing differs.
pub fn moves(last_applied: Option<&AppliedState>, target: &StiggTarget) -> Vec<Move> {
    match target {
        StiggTarget::Active(active) => towards_active(last_applied, active),
        StiggTarget::Canceled {
            revoke_entitlements,
        } => match last_applied {
            Some(applied) if applied.status == AppliedStatus::Active => {
                vec![Move::Change(Change::CancelNow {
                    revoke_entitlements: *revoke_entitlements,
                })]
            }
            // Never provisioned, or already canceled: nothing is active to cancel.
            _ => Vec::new(),
        },
        StiggTarget::Untouched(_) => Vec::new(),
    }
}

fn towards_active(last_applied: Option<&AppliedState>, target: &ActiveTarget) -> Vec<Move> {
    let current = last_applied
        .filter(|applied| applied.status == AppliedStatus::Active)
        .filter(|applied| applied.plan == target.plan.code);
    let Some(current) = current else {
        let kind = match last_applied {
            None => CreationKind::Provision,
            Some(applied) if applied.status == AppliedStatus::Canceled => CreationKind::Resume,
            Some(_) => CreationKind::PlanChange,
        };
        let creation = Move::Create(Creation {
            kind,
            plan: target.plan.clone(),
            trial_end: target.trial_end,
        });
        // A new subscription starts without a cancellation date.
        return std::iter::once(creation)
            .chain(target.cancellation_date.map(cancel_at))
            .collect();
    };

    let mut moves = Vec::new();
    if let Some(end) = target.trial_end
        && current.trial_end != Some(end)
    {
        moves.push(Move::Change(Change::PatchTrialEnd(end)));
    }
    match (current.cancellation_date, target.cancellation_date) {
        (applied, Some(date)) if applied != Some(date) => moves.push(cancel_at(date)),
        (Some(_), None) => moves.push(Move::Change(Change::RemoveCancellation)),
        _ => {}
    }
    moves
}

fn cancel_at(date: DateTime<Utc>) -> Move {
    Move::Change(Change::CancelAt(date))
}

/// The move a re-read Stripe customer calls for: its Stigg customer is archived once Stripe
/// deleted it, if it was ever provisioned.
pub fn customer_move(
    customer: &StripeCustomer,
    org_id: &OrgId,
    ever_provisioned: bool,
) -> Option<Move> {
    (customer.deleted && ever_provisioned).then(|| Move::ArchiveCustomer {
        customer_id: org_id.clone(),
    })
}
