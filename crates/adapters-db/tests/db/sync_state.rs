//! SyncStateStore: the record of what the sync applied, its intent and outcome, and the read
//! route's view of it (or of provisioning, for a subscription never synced).

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_domain::model::{
    AppliedState, AppliedStatus, BillingPeriod, Change, Creation, CreationKind, Move, Plan,
    PlanCode, StripeEventId,
};
use onboarding_domain::ports::{Intent, SyncRecord, SyncStateStore, SyncView};

use crate::support::{CONTRACT_SEED, TestResult, on_both_backends, org_id, sub_id, utc};

on_both_backends!(
    load_is_none_before_anything_is_recorded,
    an_intent_is_recorded_then_cleared_by_the_applied_state,
    a_refused_intent_is_cleared_and_the_applied_state_kept,
    an_outcome_keeps_the_last_event_when_it_names_none,
    view_of_a_subscription_only_provisioned,
    view_of_a_synced_subscription,
    view_of_a_provisioned_subscription_whose_syncs_applied_nothing,
    view_is_none_without_a_finished_provisioning_or_a_record,
);

fn t0() -> DateTime<Utc> {
    utc(2026, 12, 4, 10, 0, 0).expect("a valid time")
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

fn evt(raw: &str) -> StripeEventId {
    StripeEventId::parse(raw).expect("a valid event id")
}

fn provision_intent() -> Intent {
    Intent {
        idempotency_key: "sync:sub_A1:0:provision:plan_starter_m:-".into(),
        action: Move::Create(Creation {
            kind: CreationKind::Provision,
            plan: Plan {
                code: PlanCode::parse("plan_starter_m").expect("a valid plan code"),
                stigg_plan_id: "plan-starter".into(),
                billing_period: BillingPeriod::Monthly,
            },
            trial_end: Some(at(86_400 * 14)),
        }),
    }
}

fn applied(moves_applied: u64) -> AppliedState {
    AppliedState {
        stigg_subscription_id: "sub_A1".into(),
        plan: PlanCode::parse("plan_starter_m").expect("a valid plan code"),
        status: AppliedStatus::Active,
        trial_end: Some(at(86_400 * 14)),
        cancellation_date: Some(at(86_400 * 30)),
        moves_applied,
    }
}

/// sub_A1 provisioned, as the provisioning store records it, for an organization with a
/// tenant.
async fn provisioned(db: &TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    db.execute(
        "UPDATE organizations SET tenant_id = 'tenant_1' WHERE id = 'org_1';
         INSERT INTO stigg_subscription_provisions \
           (stripe_subscription_id, organization_id, stigg_customer_id, stigg_subscription_id, \
            provisioned_at, attempts, updated_at) \
         VALUES ('sub_A1', 'org_1', 'org_1', 'sub_A1', '2026-12-04 09:00:00', 1, \
                 '2026-12-04 09:00:00')",
    )
    .await?;
    Ok(())
}

async fn load_is_none_before_anything_is_recorded(db: TestDatabase) -> TestResult {
    assert_eq!(db.load(&sub_id("sub_A1")).await?, None);
    Ok(())
}

async fn a_refused_intent_is_cleared_and_the_applied_state_kept(db: TestDatabase) -> TestResult {
    let (sub, org) = (sub_id("sub_A1"), org_id("org_1"));
    db.record_applied(&sub, &org, "org_1", &applied(1), at(0))
        .await?;
    db.record_intent(&sub, &org, &provision_intent(), at(1))
        .await?;
    db.clear_intent(&sub).await?;
    assert_eq!(
        db.load(&sub).await?,
        Some(SyncRecord {
            org_id: org,
            applied: Some(applied(1)),
            intent: None,
        })
    );
    // Clearing what was never recorded changes nothing.
    db.clear_intent(&sub_id("sub_None1")).await?;
    assert_eq!(db.load(&sub_id("sub_None1")).await?, None);
    Ok(())
}

async fn an_intent_is_recorded_then_cleared_by_the_applied_state(db: TestDatabase) -> TestResult {
    let (sub, org) = (sub_id("sub_A1"), org_id("org_1"));
    db.record_intent(&sub, &org, &provision_intent(), at(0))
        .await?;
    assert_eq!(
        db.load(&sub).await?,
        Some(SyncRecord {
            org_id: org.clone(),
            applied: None,
            intent: Some(provision_intent()),
        })
    );
    db.record_outcome(&sub, &org, None, Some("Stigg unavailable"), at(1))
        .await?;

    db.record_applied(&sub, &org, "org_1", &applied(1), at(2))
        .await?;
    assert_eq!(
        db.load(&sub).await?,
        Some(SyncRecord {
            org_id: org.clone(),
            applied: Some(applied(1)),
            intent: None,
        })
    );
    let view = db.view(&sub).await?.context("a view")?;
    assert_eq!(view.last_error, None, "success clears the last error");
    assert_eq!(view.stigg_customer_id.as_deref(), Some("org_1"));

    // The next move's intent leaves the applied state as it is; its success replaces it.
    let cancel = Intent {
        idempotency_key: "sync:sub_A1:1:cancel-now:default".into(),
        action: Move::Change(Change::CancelNow {
            revoke_entitlements: false,
        }),
    };
    db.record_intent(&sub, &org, &cancel, at(3)).await?;
    let record = db.load(&sub).await?.context("a record")?;
    assert_eq!(
        (record.applied, record.intent),
        (Some(applied(1)), Some(cancel))
    );
    let canceled = AppliedState {
        status: AppliedStatus::Canceled,
        trial_end: None,
        cancellation_date: None,
        ..applied(2)
    };
    db.record_applied(&sub, &org, "org_1", &canceled, at(4))
        .await?;
    let record = db.load(&sub).await?.context("a record")?;
    assert_eq!((record.applied, record.intent), (Some(canceled), None));
    Ok(())
}

async fn an_outcome_keeps_the_last_event_when_it_names_none(db: TestDatabase) -> TestResult {
    let (sub, org) = (sub_id("sub_A1"), org_id("org_1"));
    db.record_outcome(&sub, &org, Some(&evt("evt_1")), Some("boom"), at(1))
        .await?;
    assert_eq!(
        db.load(&sub).await?,
        Some(SyncRecord {
            org_id: org.clone(),
            applied: None,
            intent: None,
        }),
        "the first outcome creates the record"
    );
    let view = db.view(&sub).await?.context("a view")?;
    assert_eq!(
        (
            view.last_synced_at,
            view.last_event_id.as_deref(),
            view.last_error.as_deref()
        ),
        (Some(at(1)), Some("evt_1"), Some("boom"))
    );

    // A sync not started by an event (the CLI's, say) that succeeded.
    db.record_outcome(&sub, &org, None, None, at(2)).await?;
    let view = db.view(&sub).await?.context("a view")?;
    assert_eq!(
        (
            view.last_synced_at,
            view.last_event_id.as_deref(),
            view.last_error.as_deref()
        ),
        (Some(at(2)), Some("evt_1"), None)
    );

    let long = "é".repeat(1200);
    db.record_outcome(&sub, &org, Some(&evt("evt_2")), Some(&long), at(3))
        .await?;
    let view = db.view(&sub).await?.context("a view")?;
    assert_eq!(view.last_event_id.as_deref(), Some("evt_2"));
    assert_eq!(
        view.last_error.map(|e| e.chars().count()),
        Some(1000),
        "the start of the error is kept"
    );
    Ok(())
}

async fn view_of_a_subscription_only_provisioned(db: TestDatabase) -> TestResult {
    provisioned(&db).await?;
    assert_eq!(
        db.view(&sub_id("sub_A1")).await?,
        Some(SyncView {
            stripe_subscription_id: sub_id("sub_A1"),
            org_id: "org_1".into(),
            tenant_id: Some("tenant_1".into()),
            stigg_customer_id: Some("org_1".into()),
            stigg_subscription_id: Some("sub_A1".into()),
            plan_code: Some("plan_starter_m".into()),
            status: Some("active".into()),
            trial_ends_at: Some(utc(2030, 1, 15, 0, 0, 0)?),
            cancellation_date: None,
            provisioned_at: Some(utc(2026, 12, 4, 9, 0, 0)?),
            last_synced_at: None,
            last_event_id: None,
            last_error: None,
        })
    );
    Ok(())
}

async fn view_of_a_synced_subscription(db: TestDatabase) -> TestResult {
    provisioned(&db).await?;
    let (sub, org) = (sub_id("sub_A1"), org_id("org_1"));
    let state = AppliedState {
        stigg_subscription_id: "stigg-2".into(),
        status: AppliedStatus::Canceled,
        ..applied(3)
    };
    db.record_applied(&sub, &org, "org_1", &state, at(5))
        .await?;
    db.record_outcome(&sub, &org, Some(&evt("evt_7")), None, at(6))
        .await?;
    assert_eq!(
        db.view(&sub).await?,
        Some(SyncView {
            stripe_subscription_id: sub.clone(),
            org_id: "org_1".into(),
            tenant_id: Some("tenant_1".into()),
            stigg_customer_id: Some("org_1".into()),
            stigg_subscription_id: Some("stigg-2".into()),
            plan_code: Some("plan_starter_m".into()),
            status: Some("canceled".into()),
            trial_ends_at: Some(at(86_400 * 14)),
            cancellation_date: Some(at(86_400 * 30)),
            provisioned_at: Some(utc(2026, 12, 4, 9, 0, 0)?),
            last_synced_at: Some(at(6)),
            last_event_id: Some("evt_7".into()),
            last_error: None,
        }),
        "the record, not the provisioning or the subscriptions row"
    );

    // Synced but never provisioned by this service (nor known to it): the record alone.
    let other = sub_id("sub_B1");
    db.record_outcome(&other, &org_id("org_9"), None, Some("no plan"), at(7))
        .await?;
    let view = db.view(&other).await?.context("a view")?;
    assert_eq!(
        (
            view.org_id.as_str(),
            view.tenant_id,
            view.status,
            view.provisioned_at
        ),
        ("org_9", None, None, None)
    );
    Ok(())
}

/// Runs that moved nothing, failed or left an intent applied nothing: Stigg holds what
/// provisioning created, shown with the runs' outcome.
async fn view_of_a_provisioned_subscription_whose_syncs_applied_nothing(
    db: TestDatabase,
) -> TestResult {
    provisioned(&db).await?;
    let (sub, org) = (sub_id("sub_A1"), org_id("org_1"));
    let provisioned = SyncView {
        stripe_subscription_id: sub.clone(),
        org_id: "org_1".into(),
        tenant_id: Some("tenant_1".into()),
        stigg_customer_id: Some("org_1".into()),
        stigg_subscription_id: Some("sub_A1".into()),
        plan_code: Some("plan_starter_m".into()),
        status: Some("active".into()),
        trial_ends_at: Some(utc(2030, 1, 15, 0, 0, 0)?),
        cancellation_date: None,
        provisioned_at: Some(utc(2026, 12, 4, 9, 0, 0)?),
        last_synced_at: None,
        last_event_id: None,
        last_error: None,
    };
    db.record_outcome(&sub, &org, Some(&evt("evt_1")), None, at(1))
        .await?;
    assert_eq!(
        db.view(&sub).await?,
        Some(SyncView {
            last_synced_at: Some(at(1)),
            last_event_id: Some("evt_1".into()),
            ..provisioned.clone()
        }),
        "a run that moved nothing"
    );
    db.record_intent(&sub, &org, &provision_intent(), at(2))
        .await?;
    db.record_outcome(
        &sub,
        &org,
        Some(&evt("evt_2")),
        Some("Stigg refused"),
        at(3),
    )
    .await?;
    assert_eq!(
        db.view(&sub).await?,
        Some(SyncView {
            last_synced_at: Some(at(3)),
            last_event_id: Some("evt_2".into()),
            last_error: Some("Stigg refused".into()),
            ..provisioned
        }),
        "a run that failed with its move's intent recorded"
    );
    Ok(())
}

async fn view_is_none_without_a_finished_provisioning_or_a_record(db: TestDatabase) -> TestResult {
    db.execute(CONTRACT_SEED).await?;
    assert_eq!(db.view(&sub_id("sub_A1")).await?, None);
    // An attempt that has not finished shows nothing either.
    db.execute(
        "INSERT INTO stigg_subscription_provisions \
           (stripe_subscription_id, organization_id, attempts, last_error, updated_at) \
         VALUES ('sub_A1', 'org_1', 2, 'Stigg unavailable', '2026-12-04 09:00:00')",
    )
    .await?;
    assert_eq!(db.view(&sub_id("sub_A1")).await?, None);
    Ok(())
}
