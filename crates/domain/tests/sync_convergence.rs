//! The lifecycle sync converges: whatever the order, duplication and timing of Stripe's
//! events, Stigg ends as the last Stripe state calls for, without a duplicate mutation, and
//! a further event with nothing changed moves nothing.
//!
//! One Stripe subscription goes through random states. Each change emits an event; events
//! are delivered at random moments, in random order and some several times. Every delivery
//! re-reads what Stripe holds at that moment and never uses the event's content, so the order
//! of events comes down to when deliveries happen between Stripe's changes. Moves go to an
//! in-memory Stigg that behaves as the contract says: a new
//! subscription replaces the active one, cancelling a canceled one counts as done, and an
//! idempotency key seen before gets the first answer back without acting again. Sometimes
//! the service "crashes" after Stigg answered and before recording, and tries again.
//!
//! `PROPTEST_CASES` raises the number of cases for a longer local run.

// clippy.toml's allow-*-in-tests reaches only #[test] functions, not this crate's helpers;
// in a test, a set-up step that fails should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use onboarding_domain::model::{
    AppliedState, AppliedStatus, BillingPeriod, Change, CreationKind, Move, Plan, PlanCatalog,
    PlanCode, StiggTarget, StripeCustomerId, StripePrice, StripePriceId, StripeSubscription,
    StripeSubscriptionId, StripeSubscriptionItem, SubscriptionStatus,
};
use onboarding_domain::use_cases::sync_subscription::{SuspendedPolicy, moves, target};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512)
}

fn day(n: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 1, n, 0, 0, 0)
        .single()
        .unwrap_or_else(|| panic!("no day {n}"))
}

fn code(raw: &str) -> PlanCode {
    PlanCode::parse(raw).unwrap()
}

fn price_id(raw: &str) -> StripePriceId {
    StripePriceId::parse(raw).unwrap()
}

fn sub_id() -> StripeSubscriptionId {
    StripeSubscriptionId::parse("sub_1").unwrap()
}

/// `starter` lists its price; `pro` is found by its price's lookup key.
fn catalog() -> PlanCatalog {
    let plan = |raw: &str| Plan {
        code: code(raw),
        stigg_plan_id: format!("stigg-{raw}"),
        billing_period: BillingPeriod::Monthly,
    };
    PlanCatalog::new([plan("starter"), plan("pro")])
        .and_then(|c| c.with_stripe_prices([(code("starter"), [price_id("price_starter")])]))
        .unwrap()
}

/// A few days only, so that a new state often repeats a value of the one before.
fn some_day() -> impl Strategy<Value = DateTime<Utc>> {
    (1..=4u32).prop_map(day)
}

/// Stripe states the sync can mirror (a trial has an end, a period end is known).
fn stripe_state() -> impl Strategy<Value = StripeSubscription> {
    let status = prop::sample::select(vec![
        "trialing",
        "trialing",
        "active",
        "active",
        "past_due",
        "canceled",
        "incomplete_expired",
        "paused",
        "unpaid",
        "incomplete",
    ]);
    let price = prop_oneof![
        Just(StripePrice {
            id: price_id("price_starter"),
            lookup_key: None
        }),
        Just(StripePrice {
            id: price_id("price_other"),
            lookup_key: Some("pro".into())
        }),
    ];
    (
        (status, price, some_day(), any::<bool>()),
        (prop::option::of(some_day()), any::<bool>()),
        (prop::option::of(some_day()), some_day()),
    )
        .prop_map(
            |(
                (status, price, trial_end, keep_trial_end),
                (cancel_at, cancel_at_period_end),
                (item_period_end, period_end),
            )| {
                let status = SubscriptionStatus::parse(status);
                let trialing = status == SubscriptionStatus::Trialing;
                StripeSubscription {
                    id: sub_id(),
                    customer: StripeCustomerId::parse("cus_1").unwrap(),
                    trial_end: (trialing || keep_trial_end).then_some(trial_end),
                    status,
                    cancel_at,
                    cancel_at_period_end,
                    current_period_end: Some(period_end),
                    first_item: StripeSubscriptionItem {
                        price,
                        current_period_end: item_period_end,
                    },
                }
            },
        )
}

/// One delivery, true when the service crashes after its first Stigg answer, before
/// recording it. Which event a delivery carries plays no part: it is only a prompt to re-read.
fn delivery() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.1)
}

/// A Stripe history, each state with the deliveries that arrive while it is the latest (late
/// or repeated events of earlier states among them), and the deliveries after the last
/// change, at least one since that change sends an event of its own.
fn scenario() -> impl Strategy<Value = (Vec<(StripeSubscription, Vec<bool>)>, Vec<bool>)> {
    (
        prop::collection::vec(
            (stripe_state(), prop::collection::vec(delivery(), 0..3)),
            1..8,
        ),
        prop::collection::vec(delivery(), 1..10),
    )
}

/// A subscription as the in-memory Stigg holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StiggSubscription {
    id: String,
    plan: PlanCode,
    active: bool,
    trial_end: Option<DateTime<Utc>>,
    cancellation_date: Option<DateTime<Utc>>,
}

/// Stigg for one customer, as far as the sync relies on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Stigg {
    subscriptions: Vec<StiggSubscription>,
    /// What each idempotency key was answered: the subscription a creation made.
    answers: HashMap<String, Option<String>>,
}

impl Stigg {
    /// Applies `mv` (on `current` for a change) and answers the created subscription's id.
    fn call(&mut self, mv: &Move, key: &str, current: Option<&str>) -> Option<String> {
        if let Some(answer) = self.answers.get(key) {
            return answer.clone();
        }
        let answer = match mv {
            Move::Create(creation) => {
                let id = match creation.kind {
                    CreationKind::Provision => sub_id().to_string(),
                    CreationKind::Resume | CreationKind::PlanChange => {
                        format!("stigg-{}", self.subscriptions.len())
                    }
                };
                assert!(
                    self.subscriptions.iter().all(|s| s.id != id),
                    "{id} created twice"
                );
                // A new subscription replaces the customer's active one.
                for replaced in &mut self.subscriptions {
                    replaced.active = false;
                }
                self.subscriptions.push(StiggSubscription {
                    id: id.clone(),
                    plan: creation.plan.code.clone(),
                    active: true,
                    trial_end: creation.trial_end,
                    cancellation_date: None,
                });
                Some(id)
            }
            Move::Change(change) => {
                let subscription = self
                    .subscriptions
                    .iter_mut()
                    .find(|s| Some(s.id.as_str()) == current)
                    .unwrap_or_else(|| panic!("{change:?} on unknown subscription {current:?}"));
                match change {
                    Change::PatchTrialEnd(end) => subscription.trial_end = Some(*end),
                    Change::CancelAt(date) => subscription.cancellation_date = Some(*date),
                    Change::RemoveCancellation => subscription.cancellation_date = None,
                    // Already canceled counts as done.
                    Change::CancelNow { .. } => subscription.active = false,
                }
                None
            }
            Move::ArchiveCustomer { .. } => panic!("no subscription change archives"),
        };
        self.answers.insert(key.to_owned(), answer.clone());
        answer
    }

    fn active(&self) -> Vec<&StiggSubscription> {
        self.subscriptions.iter().filter(|s| s.active).collect()
    }
}

/// The service's side: the record of what it applied, and how many creations it recorded.
#[derive(Debug, Default)]
struct Service {
    applied: Option<AppliedState>,
    creations_recorded: usize,
}

impl Service {
    /// Handles one delivery: re-reads `stripe`, applies the moves. A crash loses the first
    /// move's record after Stigg answered, and the delivery is handled again.
    fn handle(
        &mut self,
        stripe: &StripeSubscription,
        policy: SuspendedPolicy,
        stigg: &mut Stigg,
        crash: bool,
    ) -> usize {
        let target = target(stripe, &catalog(), policy).unwrap();
        let planned = moves(self.applied.as_ref(), &target);
        if crash && let Some(first) = planned.first() {
            let key = first.idempotency_key(&sub_id(), self.applied.as_ref());
            let current = self
                .applied
                .as_ref()
                .map(|a| a.stigg_subscription_id.as_str());
            stigg.call(first, &key, current);
            return self.handle(stripe, policy, stigg, false);
        }
        for mv in &planned {
            let key = mv.idempotency_key(&sub_id(), self.applied.as_ref());
            let current = self
                .applied
                .as_ref()
                .map(|a| a.stigg_subscription_id.clone());
            let created = stigg.call(mv, &key, current.as_deref());
            self.applied = Some(match (mv, &self.applied, created) {
                (Move::Create(creation), previous, Some(id)) => {
                    self.creations_recorded += 1;
                    AppliedState::created(previous.as_ref(), creation, id)
                }
                (Move::Change(change), Some(applied), None) => applied.changed(change),
                other => panic!("{mv:?} answered {other:?}"),
            });
        }
        planned.len()
    }
}

/// Stigg as `target` calls for, `before` being Stigg when the last Stripe state appeared.
fn assert_meets(
    stigg: &Stigg,
    applied: Option<&AppliedState>,
    target: &StiggTarget,
    before: &Stigg,
) -> Result<(), TestCaseError> {
    match target {
        StiggTarget::Active(want) => {
            let active = stigg.active();
            prop_assert_eq!(active.len(), 1, "{:?}", stigg);
            let have = active[0];
            prop_assert_eq!(&have.plan, &want.plan.code);
            prop_assert_eq!(have.cancellation_date, want.cancellation_date);
            if want.trial_end.is_some() {
                prop_assert_eq!(have.trial_end, want.trial_end);
            }
            let applied = applied.expect("active, yet nothing applied");
            prop_assert_eq!(&applied.stigg_subscription_id, &have.id);
            prop_assert_eq!(applied.status, AppliedStatus::Active);
            prop_assert_eq!(&applied.plan, &have.plan);
            prop_assert_eq!(applied.trial_end, have.trial_end);
            prop_assert_eq!(applied.cancellation_date, have.cancellation_date);
        }
        StiggTarget::Canceled { .. } => {
            prop_assert!(stigg.active().is_empty(), "{:?}", stigg);
            if let Some(applied) = applied {
                prop_assert_eq!(applied.status, AppliedStatus::Canceled);
            }
        }
        StiggTarget::Untouched(_) => prop_assert_eq!(stigg, before),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn stigg_ends_as_the_last_stripe_state_calls_for(
        (history, late) in scenario(),
        keep in any::<bool>(),
    ) {
        let policy = if keep { SuspendedPolicy::Keep } else { SuspendedPolicy::Revoke };
        let mut stigg = Stigg::default();
        let mut service = Service::default();
        let mut stigg_at_last_change = Stigg::default();
        // The Stripe state the record was last brought to, as an index into the history.
        let mut synced_to = None;

        let last = history.len() - 1;
        for (now, (stripe, deliveries)) in history.iter().enumerate() {
            let mut deliveries = deliveries.clone();
            if now == last {
                stigg_at_last_change = stigg.clone();
                deliveries.extend(&late);
            }
            for crash in deliveries {
                let made = service.handle(stripe, policy, &mut stigg, crash);
                if synced_to == Some(now) {
                    prop_assert_eq!(made, 0, "moves with nothing changed in Stripe");
                }
                synced_to = Some(now);
            }
        }

        let stripe = &history[last].0;
        let want = target(stripe, &catalog(), policy).unwrap();
        prop_assert_eq!(moves(service.applied.as_ref(), &want), vec![]);
        prop_assert_eq!(service.handle(stripe, policy, &mut stigg, false), 0);
        assert_meets(&stigg, service.applied.as_ref(), &want, &stigg_at_last_change)?;
        // Every subscription Stigg made is one the service recorded: none from a replay.
        prop_assert_eq!(stigg.subscriptions.len(), service.creations_recorded);
    }
}
