//! One run with its I/O, against mockall doubles: a port without an expectation panics when
//! called, so each test also proves which calls were not made.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

use super::{catalog, subscription};
use crate::model::fixtures::{code, day};
use crate::model::{
    AppliedState, AppliedStatus, Change, Lease, LeaseKey, Move, OrgId, Organization,
    ProvisionedSubscription, ProvisioningState, Stored, StripeCustomerId, StripeSubscriptionId,
    Subscription, SubscriptionStatus,
};
use crate::ports::{
    Cancellation, Intent, MockClock, MockLeaseStore, MockOrgRepo, MockProvisioningStore,
    MockStiggGateway, MockStiggLifecycle, MockStripeReader, MockSubscriptionRepo,
    MockSyncStateStore, SubscriptionPatch, SyncRecord,
};
use crate::use_cases::OperationContext;
use crate::use_cases::sync_subscription::{
    SuspendedPolicy, SyncError, SyncPorts, SyncSettings, SyncSubscription,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
        .single()
        .unwrap()
}

fn sub_id() -> StripeSubscriptionId {
    StripeSubscriptionId::parse("sub_1").unwrap()
}

fn lease() -> Lease {
    Lease {
        key: LeaseKey::subscription(&sub_id()),
        holder: "h1".into(),
        expires_at: t0() + chrono::Duration::seconds(35),
    }
}

fn ctx() -> OperationContext {
    OperationContext {
        correlation_id: crate::model::CorrelationId::parse("evt_1").unwrap(),
        tenant_id: None,
    }
}

/// The database's rows: `org_1` billed as `cus_1`, its trialing `sub_1` on `starter`.
fn doubles() -> (MockSubscriptionRepo, MockOrgRepo) {
    let mut subscriptions = MockSubscriptionRepo::new();
    subscriptions.expect_find_by_stripe_id().returning(|_| {
        Ok(Some(Subscription {
            id: "s_1".into(),
            organization_id: Stored::parse("org_1".into()),
            stripe_subscription_id: sub_id(),
            plan_code: Stored::parse("starter".into()),
            status: SubscriptionStatus::Trialing,
            trial_ends_at: Some(day(14)),
        }))
    });
    let mut orgs = MockOrgRepo::new();
    orgs.expect_find().returning(|_| {
        Ok(Some(Organization {
            id: OrgId::parse("org_1").unwrap(),
            name: "Acme".into(),
            email: None,
            tenant_id: None,
            stripe_customer_id: Some(Stored::parse("cus_1".into())),
        }))
    });
    (subscriptions, orgs)
}

fn clock() -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(t0());
    clock.expect_monotonic().return_const(Instant::now());
    clock
}

struct Doubles {
    provisioning: MockProvisioningStore,
    states: MockSyncStateStore,
    leases: MockLeaseStore,
    stripe: MockStripeReader,
    lifecycle: MockStiggLifecycle,
}

impl Doubles {
    fn new() -> Self {
        Self {
            provisioning: MockProvisioningStore::new(),
            states: MockSyncStateStore::new(),
            leases: MockLeaseStore::new(),
            stripe: MockStripeReader::new(),
            lifecycle: MockStiggLifecycle::new(),
        }
    }

    fn sync(self) -> SyncSubscription {
        let (subscriptions, orgs) = doubles();
        SyncSubscription::new(
            SyncPorts {
                orgs: Arc::new(orgs),
                subscriptions: Arc::new(subscriptions),
                provisioning: Arc::new(self.provisioning),
                states: Arc::new(self.states),
                leases: Arc::new(self.leases),
                stripe: Arc::new(self.stripe),
                stigg: Arc::new(MockStiggGateway::new()),
                lifecycle: Arc::new(self.lifecycle),
                clock: Arc::new(clock()),
            },
            SyncSettings {
                catalog: Arc::new(catalog()),
                suspended: SuspendedPolicy::Revoke,
                deadline: Duration::from_secs(30),
            },
        )
    }
}

fn active_state(moves_applied: u64) -> AppliedState {
    AppliedState {
        stigg_subscription_id: "sub_1".into(),
        plan: code("starter"),
        status: AppliedStatus::Active,
        trial_end: None,
        cancellation_date: None,
        moves_applied,
    }
}

/// Keeps every state the run records.
fn recording(states: &mut MockSyncStateStore) -> Arc<Mutex<Vec<AppliedState>>> {
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let sink = recorded.clone();
    states
        .expect_record_applied()
        .returning(move |_, _, _, applied, _| {
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(applied.clone());
            Ok(())
        });
    states
        .expect_record_outcome()
        .returning(|_, _, _, _, _| Ok(()));
    recorded
}

#[tokio::test]
async fn a_move_a_crashed_holder_sent_is_sent_again_under_its_key_before_anything_else() {
    let mut d = Doubles::new();
    d.states.expect_load().returning(|_| {
        Ok(Some(SyncRecord {
            org_id: OrgId::parse("org_1").unwrap(),
            applied: Some(active_state(1)),
            intent: Some(Intent {
                idempotency_key: "sync:sub_1:1:cancel-now:default".into(),
                action: Move::Change(Change::CancelNow {
                    revoke_entitlements: false,
                }),
            }),
        }))
    });
    let recorded = recording(&mut d.states);
    d.leases
        .expect_renew()
        .times(1)
        .returning(|lease, _, _| Ok(Some(lease.clone())));
    d.lifecycle
        .expect_cancel_subscription()
        .withf(|id, cancellation, key, _| {
            id == "sub_1"
                && *cancellation
                    == Cancellation::Immediately {
                        revoke_entitlements: false,
                    }
                && key == "sync:sub_1:1:cancel-now:default"
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    // Stripe says canceled now: once the intent is finished, nothing differs.
    d.stripe
        .expect_subscription()
        .returning(|_, _| Ok(Some(subscription("canceled"))));

    let synced = d
        .sync()
        .subscription(&lease(), &sub_id(), None, &ctx())
        .await
        .unwrap();
    let calls: Vec<&str> = synced.moves.iter().map(|m| m.call.as_str()).collect();
    assert_eq!(calls, ["cancel_subscription"]);
    let recorded = recorded.lock().unwrap().clone();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].status, AppliedStatus::Canceled);
    assert_eq!(recorded[0].moves_applied, 2);
}

#[tokio::test]
async fn after_provisioning_the_first_move_is_recorded_as_an_intent_then_applied() {
    let mut d = Doubles::new();
    d.states.expect_load().returning(|_| Ok(None));
    d.provisioning.expect_load().returning(|_, _| {
        Ok(ProvisioningState::Done(ProvisionedSubscription {
            org_id: OrgId::parse("org_1").unwrap(),
            stripe_subscription_id: sub_id(),
            stigg_customer_id: "org_1".into(),
            stigg_subscription_id: "sub_1".into(),
            provisioned_at: t0(),
        }))
    });
    let recorded = recording(&mut d.states);
    let intents = Arc::new(Mutex::new(Vec::new()));
    let sink = intents.clone();
    d.states
        .expect_record_intent()
        .returning(move |_, _, intent, _| {
            sink.lock().unwrap().push(intent.idempotency_key.clone());
            Ok(())
        });
    d.leases
        .expect_renew()
        .times(1)
        .returning(|lease, _, _| Ok(Some(lease.clone())));
    let key = format!("sync:sub_1:0:trial-end:{}", day(21).timestamp());
    let expected_key = key.clone();
    d.lifecycle
        .expect_patch_subscription()
        .withf(move |id, patch, key, _| {
            id == "sub_1" && *patch == SubscriptionPatch::TrialEnd(day(21)) && key == expected_key
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    // Stripe extended the trial from day 14 (what was provisioned) to day 21.
    d.stripe.expect_subscription().returning(|_, _| {
        let mut s = subscription("trialing");
        s.trial_end = Some(day(21));
        Ok(Some(s))
    });

    let synced = d
        .sync()
        .subscription(&lease(), &sub_id(), None, &ctx())
        .await
        .unwrap();
    assert_eq!(synced.moves.len(), 1);
    assert_eq!(*intents.lock().unwrap(), [key]);
    let recorded = recorded.lock().unwrap().clone();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].trial_end, Some(day(21)));
    assert_eq!(recorded[0].moves_applied, 1);
}

#[tokio::test]
async fn a_subscription_of_another_stripe_customer_fails_without_calling_stigg() {
    let mut d = Doubles::new();
    d.states.expect_load().returning(|_| Ok(None));
    d.provisioning
        .expect_load()
        .returning(|_, _| Ok(ProvisioningState::Pending { customer: None }));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = errors.clone();
    d.states
        .expect_record_outcome()
        .returning(move |_, _, _, error, _| {
            sink.lock().unwrap().push(error.map(str::to_owned));
            Ok(())
        });
    d.stripe.expect_subscription().returning(|_, _| {
        let mut s = subscription("active");
        s.customer = StripeCustomerId::parse("cus_Other").unwrap();
        Ok(Some(s))
    });

    let failed = d
        .sync()
        .subscription(&lease(), &sub_id(), None, &ctx())
        .await
        .unwrap_err();
    assert!(
        matches!(&failed.error, SyncError::Refused(reason) if reason.contains("cus_Other")),
        "{failed:?}"
    );
    assert!(failed.moves.is_empty());
    let errors = errors.lock().unwrap().clone();
    assert!(
        matches!(errors.as_slice(), [Some(error)] if error.contains("cus_Other")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn a_move_stigg_refused_is_forgotten_so_that_it_never_blocks_the_next_run() {
    let mut d = Doubles::new();
    d.states.expect_load().returning(|_| {
        Ok(Some(SyncRecord {
            org_id: OrgId::parse("org_1").unwrap(),
            applied: Some(active_state(1)),
            intent: Some(Intent {
                idempotency_key: "sync:sub_1:1:remove-cancellation".into(),
                action: Move::Change(Change::RemoveCancellation),
            }),
        }))
    });
    d.states
        .expect_record_outcome()
        .returning(|_, _, _, _, _| Ok(()));
    d.states
        .expect_clear_intent()
        .times(1)
        .returning(|_| Ok(()));
    d.leases
        .expect_renew()
        .returning(|lease, _, _| Ok(Some(lease.clone())));
    d.lifecycle
        .expect_patch_subscription()
        .times(1)
        .returning(|_, _, _, _| {
            Err(crate::ports::StiggError::Rejected {
                operation: "patch_subscription",
                status: 400,
                code: "BadRequest".into(),
                message: "no".into(),
            })
        });
    d.stripe
        .expect_subscription()
        .returning(|_, _| Ok(Some(subscription("active"))));
    let failed = d
        .sync()
        .subscription(&lease(), &sub_id(), None, &ctx())
        .await
        .unwrap_err();
    assert_eq!(failed.failed_call, Some("patch_subscription"));
}

#[tokio::test]
async fn a_move_whose_outcome_is_unknown_keeps_its_intent() {
    let mut d = Doubles::new();
    d.states.expect_load().returning(|_| {
        Ok(Some(SyncRecord {
            org_id: OrgId::parse("org_1").unwrap(),
            applied: Some(active_state(1)),
            intent: Some(Intent {
                idempotency_key: "sync:sub_1:1:remove-cancellation".into(),
                action: Move::Change(Change::RemoveCancellation),
            }),
        }))
    });
    d.states
        .expect_record_outcome()
        .returning(|_, _, _, _, _| Ok(()));
    // No `clear_intent` expected: calling it panics.
    d.leases
        .expect_renew()
        .returning(|lease, _, _| Ok(Some(lease.clone())));
    d.lifecycle
        .expect_patch_subscription()
        .times(1)
        .returning(|_, _, _, _| {
            Err(crate::ports::StiggError::Unavailable {
                attempts: 3,
                cause: "HTTP 503".into(),
            })
        });
    d.stripe
        .expect_subscription()
        .returning(|_, _| Ok(Some(subscription("active"))));
    let failed = d
        .sync()
        .subscription(&lease(), &sub_id(), None, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(failed.error, SyncError::Stigg(_)), "{failed:?}");
}
