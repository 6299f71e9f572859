//! What the sync keeps as JSON text: an event's move records (`stripe_events.moves`) and a
//! sync state's intent (`stigg_sync_states.intent`).
//!
//! The domain's move types have no `Deserialize` (how they are stored is not the domain's
//! business), so an intent is written through a private mirror of them, `IntentJson`, whose
//! shape is fixed here. A stored value that does not parse back is a data error naming its
//! column. Dates are RFC 3339.

use chrono::{DateTime, Utc};
use onboarding_domain::model::{
    BillingPeriod, Change, Creation, CreationKind, Move, MoveRecord, OrgId, Plan, PlanCode,
};
use onboarding_domain::ports::{Intent, RepoError};
use serde::{Deserialize, Serialize};

const INTENT_COLUMN: &str = "stigg_sync_states.intent";
const MOVES_COLUMN: &str = "stripe_events.moves";

/// An [`Intent`] as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IntentJson {
    key: String,
    #[serde(rename = "move")]
    action: MoveJson,
}

/// A [`Move`] as stored, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum MoveJson {
    Create {
        kind: CreationKindJson,
        plan_code: String,
        stigg_plan_id: String,
        billing_period: BillingPeriodJson,
        trial_end: Option<DateTime<Utc>>,
    },
    PatchTrialEnd {
        at: DateTime<Utc>,
    },
    CancelAt {
        at: DateTime<Utc>,
    },
    RemoveCancellation,
    CancelNow {
        revoke_entitlements: bool,
    },
    ArchiveCustomer {
        customer_id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CreationKindJson {
    Provision,
    Resume,
    PlanChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BillingPeriodJson {
    Monthly,
    Annually,
}

impl From<&Intent> for IntentJson {
    fn from(intent: &Intent) -> Self {
        let action = match &intent.action {
            Move::Create(creation) => MoveJson::Create {
                kind: match creation.kind {
                    CreationKind::Provision => CreationKindJson::Provision,
                    CreationKind::Resume => CreationKindJson::Resume,
                    CreationKind::PlanChange => CreationKindJson::PlanChange,
                },
                plan_code: creation.plan.code.as_str().to_owned(),
                stigg_plan_id: creation.plan.stigg_plan_id.clone(),
                billing_period: match creation.plan.billing_period {
                    BillingPeriod::Monthly => BillingPeriodJson::Monthly,
                    BillingPeriod::Annually => BillingPeriodJson::Annually,
                },
                trial_end: creation.trial_end,
            },
            Move::Change(Change::PatchTrialEnd(at)) => MoveJson::PatchTrialEnd { at: *at },
            Move::Change(Change::CancelAt(at)) => MoveJson::CancelAt { at: *at },
            Move::Change(Change::RemoveCancellation) => MoveJson::RemoveCancellation,
            Move::Change(Change::CancelNow {
                revoke_entitlements,
            }) => MoveJson::CancelNow {
                revoke_entitlements: *revoke_entitlements,
            },
            Move::ArchiveCustomer { customer_id } => MoveJson::ArchiveCustomer {
                customer_id: customer_id.as_str().to_owned(),
            },
        };
        Self {
            key: intent.idempotency_key.clone(),
            action,
        }
    }
}

impl TryFrom<IntentJson> for Intent {
    type Error = RepoError;

    fn try_from(json: IntentJson) -> Result<Self, RepoError> {
        let action = match json.action {
            MoveJson::Create {
                kind,
                plan_code,
                stigg_plan_id,
                billing_period,
                trial_end,
            } => Move::Create(Creation {
                kind: match kind {
                    CreationKindJson::Provision => CreationKind::Provision,
                    CreationKindJson::Resume => CreationKind::Resume,
                    CreationKindJson::PlanChange => CreationKind::PlanChange,
                },
                plan: Plan {
                    code: PlanCode::parse(&plan_code).map_err(|e| {
                        invalid(INTENT_COLUMN, format!("plan code {plan_code:?}: {e}"))
                    })?,
                    stigg_plan_id,
                    billing_period: match billing_period {
                        BillingPeriodJson::Monthly => BillingPeriod::Monthly,
                        BillingPeriodJson::Annually => BillingPeriod::Annually,
                    },
                },
                trial_end,
            }),
            MoveJson::PatchTrialEnd { at } => Move::Change(Change::PatchTrialEnd(at)),
            MoveJson::CancelAt { at } => Move::Change(Change::CancelAt(at)),
            MoveJson::RemoveCancellation => Move::Change(Change::RemoveCancellation),
            MoveJson::CancelNow {
                revoke_entitlements,
            } => Move::Change(Change::CancelNow {
                revoke_entitlements,
            }),
            MoveJson::ArchiveCustomer { customer_id } => Move::ArchiveCustomer {
                customer_id: OrgId::parse(&customer_id).map_err(|e| {
                    invalid(INTENT_COLUMN, format!("customer id {customer_id:?}: {e}"))
                })?,
            },
        };
        Ok(Self {
            idempotency_key: json.key,
            action,
        })
    }
}

/// `intent` as stored.
pub(crate) fn intent_to_json(intent: &Intent) -> Result<String, RepoError> {
    serde_json::to_string(&IntentJson::from(intent)).map_err(|e| unwritable(INTENT_COLUMN, &e))
}

/// A stored intent.
pub(crate) fn intent_from_json(raw: &str) -> Result<Intent, RepoError> {
    let json: IntentJson =
        serde_json::from_str(raw).map_err(|e| invalid(INTENT_COLUMN, format!("JSON: {e}")))?;
    Intent::try_from(json)
}

/// `moves` as stored.
pub(crate) fn moves_to_json(moves: &[MoveRecord]) -> Result<String, RepoError> {
    serde_json::to_string(moves).map_err(|e| unwritable(MOVES_COLUMN, &e))
}

/// Stored moves; none before the event was settled (NULL).
pub(crate) fn moves_from_json(raw: Option<&str>) -> Result<Vec<MoveRecord>, RepoError> {
    raw.map_or_else(
        || Ok(Vec::new()),
        |raw| serde_json::from_str(raw).map_err(|e| invalid(MOVES_COLUMN, format!("JSON: {e}"))),
    )
}

/// A stored value the domain cannot accept. The value itself is not repeated: it may be long.
fn invalid(column: &str, why: String) -> RepoError {
    RepoError::Unexpected(format!("{column} holds an invalid {why}"))
}

fn unwritable(column: &str, error: &serde_json::Error) -> RepoError {
    RepoError::Unexpected(format!("cannot write {column} as JSON: {error}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, 10, 30, 0).unwrap()
    }

    fn plan(code: &str, billing_period: BillingPeriod) -> Plan {
        Plan {
            code: PlanCode::parse(code).unwrap(),
            stigg_plan_id: format!("plan-{code}"),
            billing_period,
        }
    }

    fn every_kind_of_move() -> Vec<Move> {
        let create = |kind, plan, trial_end| {
            Move::Create(Creation {
                kind,
                plan,
                trial_end,
            })
        };
        vec![
            create(
                CreationKind::Provision,
                plan("starter", BillingPeriod::Monthly),
                Some(at(14)),
            ),
            create(
                CreationKind::Resume,
                plan("pro", BillingPeriod::Annually),
                None,
            ),
            create(
                CreationKind::PlanChange,
                plan("pro", BillingPeriod::Monthly),
                None,
            ),
            Move::Change(Change::PatchTrialEnd(at(15))),
            Move::Change(Change::CancelAt(at(16))),
            Move::Change(Change::RemoveCancellation),
            Move::Change(Change::CancelNow {
                revoke_entitlements: false,
            }),
            Move::Change(Change::CancelNow {
                revoke_entitlements: true,
            }),
            Move::ArchiveCustomer {
                customer_id: OrgId::parse("org_1").unwrap(),
            },
        ]
    }

    #[test]
    fn every_kind_of_intent_reads_back_as_written() {
        for (n, action) in every_kind_of_move().into_iter().enumerate() {
            let intent = Intent {
                idempotency_key: format!("sync:sub_1:{n}:x"),
                action,
            };
            let stored = intent_to_json(&intent).unwrap();
            assert_eq!(intent_from_json(&stored).unwrap(), intent, "{stored}");
        }
    }

    #[test]
    fn the_stored_shape_is_tagged_and_dates_are_rfc_3339() {
        let intent = Intent {
            idempotency_key: "k".into(),
            action: Move::Change(Change::CancelAt(at(16))),
        };
        assert_eq!(
            intent_to_json(&intent).unwrap(),
            r#"{"key":"k","move":{"type":"cancel_at","at":"2026-12-16T10:30:00Z"}}"#
        );
        let create = r#"{"key":"k","move":{"type":"create","kind":"plan_change",
            "plan_code":"pro","stigg_plan_id":"plan-pro","billing_period":"annually",
            "trial_end":null}}"#;
        assert!(matches!(
            intent_from_json(create).unwrap().action,
            Move::Create(Creation {
                kind: CreationKind::PlanChange,
                ..
            })
        ));
    }

    #[test]
    fn a_bad_stored_intent_names_the_column() {
        let bad_plan = r#"{"key":"k","move":{"type":"create","kind":"resume",
            "plan_code":"Not A Code","stigg_plan_id":"x","billing_period":"monthly"}}"#;
        for raw in [
            "not json",
            r#"{"key":"k","move":{"type":"teleport"}}"#,
            bad_plan,
            r#"{"key":"k","move":{"type":"archive_customer","customer_id":""}}"#,
        ] {
            match intent_from_json(raw) {
                Err(RepoError::Unexpected(message)) => {
                    assert!(message.contains("stigg_sync_states.intent"), "{message}");
                }
                other => panic!("{raw}: expected Unexpected, got {other:?}"),
            }
        }
    }

    #[test]
    fn moves_read_back_and_null_is_none() {
        let moves = vec![MoveRecord {
            call: "cancel_subscription".into(),
            stigg_id: "sub_1".into(),
            at: at(3),
        }];
        let stored = moves_to_json(&moves).unwrap();
        assert_eq!(moves_from_json(Some(&stored)).unwrap(), moves);
        assert_eq!(moves_from_json(None).unwrap(), []);
        assert!(moves_from_json(Some("{")).is_err());
    }
}
