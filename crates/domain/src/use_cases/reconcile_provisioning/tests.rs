//! The reconciliation against mockall doubles of every port, around a real
//! `ProvisionSubscription`. The backlog double pages like the store does (keyset on the
//! Stripe subscription id); ports without an expectation panic when called, so a test also
//! proves what was *not* called (e.g. Stigg during a dry run).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

use super::prepare::{correlation_id, quoted};
use super::*;
use crate::model::{
    BillingPeriod, Lease, Organization, Plan, ProvisionedCustomer, ProvisionedSubscription,
    ProvisioningState, Stored, Subscription, SubscriptionStatus,
};
use crate::ports::StiggError;
use crate::ports::{
    CallContext, CustomerProvisioning, MockClock, MockLeaseStore, MockOrgRepo,
    MockProvisioningBacklog, MockProvisioningStore, MockStiggGateway, MockSubscriptionRepo,
    RepoError, StiggCustomer, StiggGateway, StiggSubscription, SubscriptionProvisioning,
};
use crate::use_cases::NeverStop;
use crate::use_cases::provision_subscription::ProvisioningPolicy;
use async_trait::async_trait;

fn parse<T: std::str::FromStr>(raw: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    raw.parse()
        .unwrap_or_else(|e| panic!("test id {raw:?} should parse: {e:?}"))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
        .single()
        .expect("valid date")
}

fn catalog() -> Arc<PlanCatalog> {
    let plan = |code: &str, id: &str| Plan {
        code: parse(code),
        stigg_plan_id: id.into(),
        billing_period: BillingPeriod::Monthly,
    };
    Arc::new(
        PlanCatalog::new([
            plan("plan_starter_m", "plan-starter"),
            plan("plan_pro_m", "plan-pro"),
        ])
        .unwrap(),
    )
}

fn org(id: &str) -> Organization {
    Organization {
        id: parse(id),
        name: format!("Org {id}"),
        email: None,
        tenant_id: Some(Stored::parse("tenant-a".into())),
        stripe_customer_id: Some(Stored::parse(format!("cus_{}", id.replace('_', "")))),
    }
}

fn subscription(stripe_id: &str, org_id: &str, plan_code: &str) -> Subscription {
    Subscription {
        id: format!("s_{stripe_id}"),
        organization_id: Stored::parse(org_id.into()),
        stripe_subscription_id: parse(stripe_id),
        plan_code: Stored::parse(plan_code.into()),
        status: SubscriptionStatus::Trialing,
        trial_ends_at: Some(t0() + chrono::Duration::days(14)),
    }
}

fn readable(organization: Organization, subscription: Subscription) -> PendingProvisioning {
    PendingProvisioning::readable(organization, subscription)
}

/// `n` good subscriptions `sub_A1..sub_An`, one organization each (`org_1..org_n`).
fn good_rows(n: usize) -> Vec<PendingProvisioning> {
    (1..=n)
        .map(|i| {
            let org_id = format!("org_{i}");
            readable(
                org(&org_id),
                subscription(&format!("sub_A{i}"), &org_id, "plan_starter_m"),
            )
        })
        .collect()
}

fn options() -> ReconcileOptions {
    ReconcileOptions {
        run_id: "run-1".into(),
        dry_run: false,
        limit: None,
        concurrency: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
    }
}

fn policy(page_size: usize) -> ReconcilePolicy {
    ReconcilePolicy {
        page_size: NonZeroUsize::new(page_size).unwrap_or(NonZeroUsize::MIN),
        ..ReconcilePolicy::default()
    }
}

/// A clock whose monotonic time moves only when someone sleeps; the sleeps are recorded.
fn fake_clock() -> (MockClock, Arc<Mutex<Vec<Duration>>>) {
    let base = Instant::now();
    let sleeps = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let mut clock = MockClock::new();
    clock.expect_now().returning(t0);
    let read = Arc::clone(&sleeps);
    clock
        .expect_monotonic()
        .returning(move || base + lock(&read).iter().sum::<Duration>());
    let write = Arc::clone(&sleeps);
    clock
        .expect_sleep()
        .returning(move |d| lock(&write).push(d));
    (clock, sleeps)
}

/// A real clock whose sleeps never end: only a stop can end a wait.
struct EndlessSleepClock;

#[async_trait]
impl Clock for EndlessSleepClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn monotonic(&self) -> Instant {
        Instant::now()
    }
    async fn sleep(&self, _duration: Duration) {
        future::pending::<()>().await;
    }
}

/// Stigg as a network service: every call lets other tasks run before it answers, so
/// items in flight really overlap.
struct SlowStigg(MockStiggGateway);

#[async_trait]
impl StiggGateway for SlowStigg {
    async fn provision_customer(
        &self,
        customer: &CustomerProvisioning,
        ctx: &CallContext,
    ) -> Result<StiggCustomer, StiggError> {
        tokio::task::yield_now().await;
        self.0.provision_customer(customer, ctx).await
    }

    async fn provision_subscription(
        &self,
        subscription: &SubscriptionProvisioning,
        ctx: &CallContext,
    ) -> Result<StiggSubscription, StiggError> {
        tokio::task::yield_now().await;
        self.0.provision_subscription(subscription, ctx).await
    }
}

#[derive(Default)]
struct TestStop(AtomicBool);

impl TestStop {
    fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl StopSignal for TestStop {
    fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    async fn stopped(&self) {
        while !self.is_stopped() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[derive(Default)]
struct Recorder {
    totals: Mutex<Vec<Option<u64>>>,
    items: Mutex<Vec<ItemReport>>,
}

impl ReconcileObserver for Recorder {
    fn on_total(&self, total: Option<u64>) {
        lock(&self.totals).push(total);
    }
    fn on_item(&self, item: &ItemReport) {
        lock(&self.items).push(item.clone());
    }
}

/// The arguments of one `pending_page` call: `(after, limit)`.
type PageRead = (Option<String>, usize);

/// Every port, wired like the store and Stigg would behave for `rows`.
struct World {
    rows: Vec<PendingProvisioning>,
    /// Subscriptions the store reports as finished when the use case loads them.
    done: HashSet<String>,
    /// Subscriptions whose lease another holder keeps for the whole run.
    held: HashSet<String>,
    count: Result<u64, RepoError>,
    /// What the store counts as skipped because of the status.
    skipped: Vec<(String, u64)>,
    /// The page (0-based) whose read fails.
    failing_page: Option<usize>,
    stigg: MockStiggGateway,
    /// `(after, limit)` of every page read.
    pages: Arc<Mutex<Vec<PageRead>>>,
    /// The failure text of every failed attempt, as recorded.
    failures: Arc<Mutex<Vec<String>>>,
    subscription_calls: Arc<AtomicUsize>,
    customer_calls: Arc<AtomicUsize>,
}

impl World {
    fn new(rows: Vec<PendingProvisioning>) -> Self {
        let count = Ok(rows.len() as u64);
        let mut world = Self {
            rows,
            done: HashSet::new(),
            held: HashSet::new(),
            count,
            skipped: Vec::new(),
            failing_page: None,
            stigg: MockStiggGateway::new(),
            pages: Arc::default(),
            failures: Arc::default(),
            subscription_calls: Arc::default(),
            customer_calls: Arc::default(),
        };
        world.stigg_customers_succeed();
        world.stigg_subscriptions_succeed();
        world
    }

    fn stigg_customers_succeed(&mut self) {
        let calls = Arc::clone(&self.customer_calls);
        self.stigg
            .expect_provision_customer()
            .returning(move |c, _| {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(StiggCustomer {
                    id: c.customer_id.to_string(),
                })
            });
    }

    fn stigg_subscriptions_succeed(&mut self) {
        let calls = Arc::clone(&self.subscription_calls);
        self.stigg
            .expect_provision_subscription()
            .returning(move |s, _| {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(StiggSubscription {
                    id: s.subscription_id.to_string(),
                })
            });
    }

    fn backlog(&self) -> MockProvisioningBacklog {
        let mut backlog = MockProvisioningBacklog::new();
        let count = self.count.clone();
        backlog
            .expect_count_pending()
            .returning(move || count.clone());
        let skipped = self.skipped.clone();
        backlog
            .expect_count_skipped_by_status()
            .returning(move || Ok(skipped.clone()));
        let rows = self.rows.clone();
        let pages = Arc::clone(&self.pages);
        let failing_page = self.failing_page;
        backlog
            .expect_pending_page()
            .returning(move |after, limit| {
                let mut pages = lock(&pages);
                pages.push((after.clone(), limit));
                if failing_page == Some(pages.len() - 1) {
                    return Err(RepoError::Unavailable("connection refused".into()));
                }
                Ok(rows
                    .iter()
                    .filter(|row| {
                        after
                            .as_deref()
                            .is_none_or(|after| row.key.as_str() > after)
                    })
                    .take(limit)
                    .cloned()
                    .collect())
            });
        backlog
    }

    fn readable(&self) -> (HashMap<String, Organization>, HashMap<String, Subscription>) {
        let mut orgs = HashMap::new();
        let mut subscriptions = HashMap::new();
        for row in &self.rows {
            if let Ok((organization, subscription)) = &row.rows {
                orgs.insert(organization.id.to_string(), organization.clone());
                subscriptions.insert(
                    subscription.stripe_subscription_id.to_string(),
                    subscription.clone(),
                );
            }
        }
        (orgs, subscriptions)
    }

    fn use_case(self, clock: Arc<dyn Clock>, policy: ReconcilePolicy) -> ReconcileProvisioning {
        let backlog = self.backlog();
        let (orgs_by_id, subscriptions_by_id) = self.readable();
        let mut orgs = MockOrgRepo::new();
        orgs.expect_find()
            .returning(move |id| Ok(orgs_by_id.get(id.as_str()).cloned()));
        let mut subscriptions = MockSubscriptionRepo::new();
        subscriptions
            .expect_find_by_stripe_id()
            .returning(move |id| Ok(subscriptions_by_id.get(id.as_str()).cloned()));
        let mut store = MockProvisioningStore::new();
        let done = self.done;
        // Customers recorded so far, by organization, as the store keeps them.
        let customers = Arc::new(Mutex::new(HashMap::<String, ProvisionedCustomer>::new()));
        let recorded = Arc::clone(&customers);
        store.expect_load().returning(move |org_id, sub| {
            Ok(if done.contains(sub.as_str()) {
                ProvisioningState::Done(ProvisionedSubscription {
                    org_id: org_id.clone(),
                    stripe_subscription_id: sub.clone(),
                    stigg_customer_id: org_id.to_string(),
                    stigg_subscription_id: sub.to_string(),
                    provisioned_at: t0(),
                })
            } else {
                ProvisioningState::Pending {
                    customer: lock(&recorded).get(org_id.as_str()).cloned(),
                }
            })
        });
        let mut leases = MockLeaseStore::new();
        let held = self.held;
        leases.expect_try_take().returning(move |key, now, _| {
            let taken_elsewhere = held
                .iter()
                .any(|sub| key.as_str() == format!("subscription:{sub}"));
            Ok((!taken_elsewhere).then(|| Lease {
                key: key.clone(),
                holder: "holder".into(),
                expires_at: now,
            }))
        });
        leases.expect_expiry().returning(|_| Ok(None));
        leases.expect_release().returning(|_| Ok(()));
        store.expect_start_attempt().returning(|_, _, _| Ok(true));
        let failures = self.failures;
        store.expect_record_failure().returning(move |_, failure| {
            lock(&failures).push(failure.to_owned());
            Ok(())
        });
        store.expect_record_customer().returning(move |customer| {
            lock(&customers).insert(customer.org_id.to_string(), customer.clone());
            Ok(())
        });
        store.expect_record_subscription().returning(|_| Ok(()));
        let provision = ProvisionSubscription::new(
            Arc::new(orgs),
            Arc::new(subscriptions),
            Arc::new(store),
            Arc::new(leases),
            Arc::new(SlowStigg(self.stigg)),
            Arc::clone(&clock),
            // As the service wires a batch: a subscription someone else holds is left to it.
            ProvisioningPolicy {
                wait_for_holder: false,
                ..ProvisioningPolicy::default()
            },
        );
        ReconcileProvisioning::new(Arc::new(backlog), catalog(), provision, clock, policy)
    }
}

fn provisioned(summary: &ReconcileSummary) -> usize {
    summary.provisioned
}

fn failed_reasons(summary: &ReconcileSummary) -> Vec<(String, String)> {
    let mut failed: Vec<_> = summary
        .failed
        .iter()
        .map(|f| (f.stripe_subscription_id.clone(), f.reason.clone()))
        .collect();
    failed.sort();
    failed
}

#[tokio::test]
async fn pages_through_a_backlog_longer_than_a_page() {
    let world = World::new(good_rows(5));
    let (pages, calls) = (
        Arc::clone(&world.pages),
        Arc::clone(&world.subscription_calls),
    );
    let use_case = world.use_case(Arc::new(fake_clock().0), policy(2));
    let recorder = Recorder::default();

    let summary = use_case.execute(&options(), &recorder, &NeverStop).await;

    assert_eq!(
        *lock(&pages),
        [
            (None, 2),
            (Some("sub_A2".to_owned()), 2),
            (Some("sub_A4".to_owned()), 2)
        ]
    );
    assert_eq!(provisioned(&summary), 5);
    assert!(summary.is_clean(), "{summary:?}");
    assert_eq!(summary.total, Some(5));
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert_eq!(*lock(&recorder.totals), [Some(5)]);
    let mut seen: Vec<_> = lock(&recorder.items)
        .iter()
        .map(|item| item.stripe_subscription_id.clone())
        .collect();
    seen.sort();
    assert_eq!(seen, ["sub_A1", "sub_A2", "sub_A3", "sub_A4", "sub_A5"]);
    assert!(
        lock(&recorder.items)
            .iter()
            .all(|item| matches!(&item.outcome, ItemOutcome::Provisioned { stigg_subscription_id, .. } if *stigg_subscription_id == item.stripe_subscription_id))
    );
}

#[tokio::test]
async fn subscriptions_whose_status_is_not_provisioned_are_skipped_and_reported() {
    let mut rows = good_rows(3);
    // Canceled after the backlog was read: the use case checks the status again.
    if let Ok((_, subscription)) = &mut rows[1].rows {
        subscription.status = SubscriptionStatus::Canceled;
    }
    let mut world = World::new(rows);
    // The store left these out of the backlog and counted them.
    world.skipped = vec![("canceled".into(), 2), ("unpaid".into(), 1)];
    let calls = Arc::clone(&world.subscription_calls);
    let use_case = world.use_case(Arc::new(fake_clock().0), policy(2));

    let summary = use_case.execute(&options(), &NoObserver, &NeverStop).await;

    assert_eq!(provisioned(&summary), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        summary.skipped,
        [("canceled".to_owned(), 3), ("unpaid".to_owned(), 1)]
    );
    assert_eq!(summary.skipped_count(), 4);
    // Skipping is not a failure.
    assert!(summary.is_clean(), "{summary:?}");
}

#[tokio::test]
async fn the_limit_caps_the_subscriptions_handled() {
    let world = World::new(good_rows(5));
    let (pages, calls) = (
        Arc::clone(&world.pages),
        Arc::clone(&world.subscription_calls),
    );
    let use_case = world.use_case(Arc::new(fake_clock().0), policy(2));
    let options = ReconcileOptions {
        limit: Some(3),
        ..options()
    };

    let summary = use_case.execute(&options, &NoObserver, &NeverStop).await;

    assert_eq!(*lock(&pages), [(None, 2), (Some("sub_A2".to_owned()), 1)]);
    assert_eq!(summary.total, Some(3));
    // The backlog held more than the limit took.
    assert_eq!(summary.pending, Some(5));
    assert_eq!(provisioned(&summary), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_dry_run_lists_what_it_would_provision_without_calling_stigg_or_the_store() {
    let mut rows = good_rows(2);
    rows.push(readable(
        org("org_9"),
        subscription("sub_A9", "org_9", "plan_gone"),
    ));
    let world = World::new(rows.clone());
    // Bare doubles: any call to Stigg, the store or the repositories panics.
    let provision = ProvisionSubscription::new(
        Arc::new(MockOrgRepo::new()),
        Arc::new(MockSubscriptionRepo::new()),
        Arc::new(MockProvisioningStore::new()),
        Arc::new(MockLeaseStore::new()),
        Arc::new(MockStiggGateway::new()),
        Arc::new(fake_clock().0),
        ProvisioningPolicy::default(),
    );
    let use_case = ReconcileProvisioning::new(
        Arc::new(world.backlog()),
        catalog(),
        provision,
        Arc::new(fake_clock().0),
        policy(10),
    );
    let options = ReconcileOptions {
        dry_run: true,
        ..options()
    };

    let summary = use_case.execute(&options, &NoObserver, &NeverStop).await;

    let mut planned: Vec<_> = summary
        .would_provision
        .iter()
        .map(|p| {
            (
                p.stripe_subscription_id.as_str(),
                p.org_id.as_str(),
                p.plan_code.as_str(),
            )
        })
        .collect();
    planned.sort();
    assert_eq!(
        planned,
        [
            ("sub_A1", "org_1", "plan_starter_m"),
            ("sub_A2", "org_2", "plan_starter_m")
        ]
    );
    assert_eq!(
        failed_reasons(&summary),
        [(
            "sub_A9".to_owned(),
            "unknown plan code 'plan_gone'".to_owned()
        )]
    );
    assert_eq!(summary.provisioned, 0);
}

#[tokio::test]
async fn stored_data_that_cannot_form_a_request_is_reported_and_the_rest_goes_on() {
    let no_customer = Organization {
        stripe_customer_id: None,
        ..org("org_2")
    };
    let bad_customer = Organization {
        stripe_customer_id: Some(Stored::parse("cus_has space".into())),
        ..org("org_3")
    };
    let bad_tenant = Organization {
        tenant_id: Some(Stored::parse("tenant with spaces".into())),
        ..org("org_5")
    };
    let rows = vec![
        readable(
            org("org_1"),
            subscription("sub_A1", "org_1", "plan_starter_m"),
        ),
        readable(
            no_customer,
            subscription("sub_A2", "org_2", "plan_starter_m"),
        ),
        readable(
            bad_customer,
            subscription("sub_A3", "org_3", "plan_starter_m"),
        ),
        readable(org("org_4"), subscription("sub_A4", "org_4", "Plan-X")),
        readable(bad_tenant, subscription("sub_A5", "org_5", "plan_pro_m")),
        PendingProvisioning::unreadable(
            "sub_bad-id",
            "subscriptions.stripe_subscription_id holds \"sub_bad-id\", which is invalid",
        ),
    ];
    let world = World::new(rows);
    let calls = Arc::clone(&world.subscription_calls);
    let use_case = world.use_case(Arc::new(fake_clock().0), policy(10));

    let summary = use_case.execute(&options(), &NoObserver, &NeverStop).await;

    assert_eq!(summary.provisioned, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let reasons = failed_reasons(&summary);
    let expected = [
        ("sub_A2", "organization 'org_2' has no Stripe customer id"),
        (
            "sub_A3",
            "organization 'org_3' has an invalid Stripe customer id 'cus_has space': must be 'cus_' followed by 1 to 250 letters or digits",
        ),
        ("sub_A4", "unknown plan code 'Plan-X'"),
        (
            "sub_A5",
            "organization 'org_5' has an invalid tenant id 'tenant with spaces': must contain only visible ASCII characters (no spaces or control characters)",
        ),
        (
            "sub_bad-id",
            "subscriptions.stripe_subscription_id holds \"sub_bad-id\", which is invalid",
        ),
    ];
    assert_eq!(
        reasons,
        expected.map(|(id, reason)| (id.to_owned(), reason.to_owned()))
    );
    assert!(!summary.is_clean());
}

#[tokio::test]
async fn every_problem_of_an_item_is_named() {
    let org = Organization {
        stripe_customer_id: None,
        ..org("org_1")
    };
    let rows = vec![readable(org, subscription("sub_A1", "org_1", "plan_gone"))];
    let use_case = World::new(rows).use_case(Arc::new(fake_clock().0), policy(10));

    let summary = use_case.execute(&options(), &NoObserver, &NeverStop).await;

    assert_eq!(
        failed_reasons(&summary),
        [(
            "sub_A1".to_owned(),
            "organization 'org_1' has no Stripe customer id; unknown plan code 'plan_gone'"
                .to_owned()
        )]
    );
}

#[tokio::test]
async fn stigg_failures_are_reported_with_their_reason_and_the_run_goes_on() {
    let mut world = World::new(good_rows(3));
    world.stigg = MockStiggGateway::new();
    world.stigg_customers_succeed();
    world
        .stigg
        .expect_provision_subscription()
        .returning(|s, _| {
            if s.subscription_id.as_str() == "sub_A2" {
                Err(StiggError::Rejected {
                    operation: "provision subscription",
                    status: 404,
                    code: "PlanNotFound".into(),
                    message: "plan not found".into(),
                })
            } else {
                Ok(StiggSubscription {
                    id: s.subscription_id.to_string(),
                })
            }
        });
    let failures = Arc::clone(&world.failures);
    let use_case = world.use_case(Arc::new(fake_clock().0), policy(10));

    let summary = use_case.execute(&options(), &NoObserver, &NeverStop).await;

    assert_eq!(summary.provisioned, 2);
    let reasons = failed_reasons(&summary);
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0].0, "sub_A2");
    assert!(reasons[0].1.contains("PlanNotFound"), "{reasons:?}");
    // The failure was recorded with its reason, for the next run (or an operator) to see.
    assert_eq!(lock(&failures).len(), 1);
}

#[tokio::test]
async fn a_subscription_finished_meanwhile_counts_as_already_provisioned() {
    let mut world = World::new(good_rows(3));
    world.done.insert("sub_A2".into());
    let calls = Arc::clone(&world.subscription_calls);
    let use_case = world.use_case(Arc::new(fake_clock().0), policy(10));
    let recorder = Recorder::default();

    let summary = use_case.execute(&options(), &recorder, &NeverStop).await;

    assert_eq!(summary.provisioned, 2);
    assert_eq!(summary.already_provisioned, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        lock(&recorder.items)
            .iter()
            .any(|item| item.stripe_subscription_id == "sub_A2"
                && item.outcome == ItemOutcome::AlreadyProvisioned)
    );
}

/// Runs side by side share the backlog out: an item another holder keeps is left to it at
/// once and reported as held elsewhere, not as a failure, and the run goes on.
#[tokio::test]
async fn a_subscription_another_holder_keeps_is_left_to_it() {
    let mut world = World::new(good_rows(3));
    world.held.insert("sub_A2".into());
    let calls = Arc::clone(&world.subscription_calls);
    let (clock, slept) = fake_clock();
    let use_case = world.use_case(Arc::new(clock), policy(10));

    let summary = use_case.execute(&options(), &NoObserver, &NeverStop).await;

    assert!(
        lock(&slept).is_empty(),
        "waited for the holder: {:?}",
        lock(&slept)
    );
    assert_eq!(
        (summary.provisioned, summary.held_elsewhere),
        (2, 1),
        "{summary:?}"
    );
    assert!(
        summary.failed.is_empty() && summary.is_clean(),
        "{summary:?}"
    );
    assert_eq!(summary.handled(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn each_item_carries_its_own_correlation_id_and_its_organizations_tenant() {
    let long_id = format!("sub_{}", "Z".repeat(200));
    let mut rows = good_rows(1);
    // Another tenant, so a tenant taken from the wrong item shows.
    let org_2 = Organization {
        tenant_id: Some(Stored::parse("tenant-b".into())),
        ..org("org_2")
    };
    rows.push(readable(
        org_2,
        subscription(&long_id, "org_2", "plan_starter_m"),
    ));
    let mut world = World::new(rows);
    world.stigg = MockStiggGateway::new();
    let seen = Arc::new(Mutex::new(Vec::<(String, Option<String>)>::new()));
    let record = Arc::clone(&seen);
    world
        .stigg
        .expect_provision_customer()
        .returning(move |c, ctx| {
            lock(&record).push((
                ctx.correlation_id.to_string(),
                c.tenant_id.as_ref().map(ToString::to_string),
            ));
            Ok(StiggCustomer {
                id: c.customer_id.to_string(),
            })
        });
    world.stigg_subscriptions_succeed();
    let use_case = world.use_case(Arc::new(fake_clock().0), policy(10));

    let summary = use_case.execute(&options(), &NoObserver, &NeverStop).await;

    assert!(summary.is_clean(), "{summary:?}");
    let mut seen = lock(&seen).clone();
    seen.sort();
    let long_correlation = format!("reconcile-run-1-{long_id}")[..128].to_owned();
    assert_eq!(
        seen,
        [
            (
                "reconcile-run-1-sub_A1".to_owned(),
                Some("tenant-a".to_owned())
            ),
            (long_correlation, Some("tenant-b".to_owned())),
        ]
    );
}

#[tokio::test]
async fn a_stop_finishes_the_items_in_flight_and_takes_no_more() {
    let stop = Arc::new(TestStop::default());
    let mut world = World::new(good_rows(6));
    world.stigg = MockStiggGateway::new();
    world.stigg_customers_succeed();
    let calls = Arc::clone(&world.subscription_calls);
    let stop_on_first = Arc::clone(&stop);
    world
        .stigg
        .expect_provision_subscription()
        .returning(move |s, _| {
            // Ctrl-C while the first Stigg call is in flight.
            stop_on_first.stop();
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(StiggSubscription {
                id: s.subscription_id.to_string(),
            })
        });
    let calls = Arc::clone(&world.subscription_calls);
    let pages = Arc::clone(&world.pages);
    let use_case = world.use_case(Arc::new(fake_clock().0), policy(10));

    let summary = use_case
        .execute(&options(), &NoObserver, stop.as_ref())
        .await;

    // Concurrency 2: both items in flight were finished, none was started after the stop.
    assert_eq!(summary.provisioned, 2, "{summary:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(summary.halt, Some(Halt::Stopped));
    assert_eq!(summary.total, Some(6));
    assert_eq!(lock(&pages).len(), 1);
    assert!(!summary.is_clean());
}

#[tokio::test]
async fn an_item_refused_by_the_rate_limit_waits_for_its_turn_and_succeeds() {
    let mut world = World::new(good_rows(1));
    world.stigg = MockStiggGateway::new();
    let refusals = Arc::new(AtomicUsize::new(2));
    world
        .stigg
        .expect_provision_customer()
        .returning(move |c, _| {
            if refusals.load(Ordering::SeqCst) > 0 {
                refusals.fetch_sub(1, Ordering::SeqCst);
                return Err(StiggError::RateLimited);
            }
            Ok(StiggCustomer {
                id: c.customer_id.to_string(),
            })
        });
    world.stigg_subscriptions_succeed();
    let failures = Arc::clone(&world.failures);
    let (clock, sleeps) = fake_clock();
    let use_case = world.use_case(Arc::new(clock), policy(10));

    let summary = use_case.execute(&options(), &NoObserver, &NeverStop).await;

    assert_eq!(summary.provisioned, 1, "{summary:?}");
    assert!(summary.is_clean(), "{summary:?}");
    // Two refusals: two pauses, the second twice the first.
    assert_eq!(
        *lock(&sleeps),
        [Duration::from_millis(500), Duration::from_millis(1000)]
    );
    assert_eq!(
        *lock(&failures),
        [
            "Stigg rate limit reached, retry later",
            "Stigg rate limit reached, retry later"
        ]
    );
}

#[tokio::test]
async fn an_item_refused_by_the_rate_limit_past_the_patience_fails() {
    let mut world = World::new(good_rows(1));
    world.stigg = MockStiggGateway::new();
    world
        .stigg
        .expect_provision_customer()
        .returning(|_, _| Err(StiggError::RateLimited));
    let (clock, sleeps) = fake_clock();
    let use_case = world.use_case(
        Arc::new(clock),
        ReconcilePolicy {
            rate_limit_patience: Duration::from_secs(3),
            ..policy(10)
        },
    );

    let summary = use_case.execute(&options(), &NoObserver, &NeverStop).await;

    // 0.5 + 1 + 2 = 3.5 s waited: past the 3 s patience.
    assert_eq!(lock(&sleeps).len(), 3);
    assert_eq!(
        failed_reasons(&summary),
        [(
            "sub_A1".to_owned(),
            "Stigg rate limit reached, retry later (still refused after 3s)".to_owned()
        )]
    );
}

#[tokio::test]
async fn a_stop_during_a_rate_limit_wait_leaves_the_item_pending() {
    let mut world = World::new(good_rows(1));
    world.stigg = MockStiggGateway::new();
    world
        .stigg
        .expect_provision_customer()
        .returning(|_, _| Err(StiggError::RateLimited));
    let use_case = world.use_case(Arc::new(EndlessSleepClock), policy(10));
    let stop = TestStop::default();
    let options = options();

    let (summary, ()) = tokio::join!(use_case.execute(&options, &NoObserver, &stop), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop.stop();
    });

    assert_eq!(summary.interrupted, 1, "{summary:?}");
    assert_eq!(summary.provisioned, 0);
    assert!(summary.failed.is_empty());
    assert!(!summary.is_clean());
}

#[tokio::test]
async fn a_backlog_that_cannot_be_read_halts_after_the_items_in_flight() {
    let mut world = World::new(good_rows(5));
    world.failing_page = Some(1);
    let use_case = world.use_case(Arc::new(fake_clock().0), policy(2));

    let summary = use_case.execute(&options(), &NoObserver, &NeverStop).await;

    assert_eq!(summary.provisioned, 2);
    assert_eq!(
        summary.halt,
        Some(Halt::StoreFailed(
            "database unavailable: connection refused".into()
        ))
    );
}

#[tokio::test]
async fn a_backlog_that_cannot_be_counted_is_still_worked_through() {
    let mut world = World::new(good_rows(2));
    world.count = Err(RepoError::Unexpected("count failed".into()));
    let use_case = world.use_case(Arc::new(fake_clock().0), policy(10));
    let recorder = Recorder::default();

    let summary = use_case.execute(&options(), &recorder, &NeverStop).await;

    assert_eq!(*lock(&recorder.totals), [None]);
    assert_eq!(summary.total, None);
    assert_eq!(summary.provisioned, 2);
}

#[tokio::test]
async fn an_empty_backlog_reads_one_page_and_does_nothing() {
    let world = World::new(Vec::new());
    let pages = Arc::clone(&world.pages);
    let use_case = world.use_case(Arc::new(fake_clock().0), policy(10));

    let summary = use_case.execute(&options(), &NoObserver, &NeverStop).await;

    assert_eq!(
        summary,
        ReconcileSummary {
            total: Some(0),
            pending: Some(0),
            ..ReconcileSummary::default()
        }
    );
    assert_eq!(*lock(&pages), [(None, 10)]);
}

#[test]
fn correlation_ids_are_cut_to_128_characters() {
    let short = correlation_id("r", &parse("sub_A1")).unwrap();
    assert_eq!(short.as_str(), "reconcile-r-sub_A1");
    let long = correlation_id("r", &parse(&format!("sub_{}", "a".repeat(250)))).unwrap();
    assert_eq!(long.as_str().len(), 128);
    assert!(long.as_str().starts_with("reconcile-r-sub_aaa"));
    assert!(correlation_id("has space", &parse("sub_A1")).is_err());
}

#[test]
fn stored_values_are_quoted_escaped_and_cut() {
    assert_eq!(quoted("plan_x"), "'plan_x'");
    assert_eq!(quoted("a\nb"), "'a\\nb'");
    let long = quoted(&"x".repeat(100));
    assert_eq!(long.chars().count(), 64 + 3);
    assert!(long.ends_with("…'"));
}

#[tokio::test]
async fn subscriptions_of_one_organization_take_turns_so_its_customer_is_created_once() {
    let rows = (1..=4)
        .map(|i| {
            readable(
                org("org_1"),
                subscription(&format!("sub_A{i}"), "org_1", "plan_starter_m"),
            )
        })
        .chain(good_rows(6).into_iter().skip(4))
        .collect();
    let world = World::new(rows);
    let (customers, subscriptions) = (
        Arc::clone(&world.customer_calls),
        Arc::clone(&world.subscription_calls),
    );
    let use_case = world.use_case(Arc::new(fake_clock().0), policy(10));
    let options = ReconcileOptions {
        concurrency: NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN),
        ..options()
    };

    let summary = use_case.execute(&options, &NoObserver, &NeverStop).await;

    assert_eq!(summary.provisioned, 6, "{summary:?}");
    assert_eq!(subscriptions.load(Ordering::SeqCst), 6);
    // org_1 once, org_5 and org_6 once each.
    assert_eq!(customers.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_deadline_spent_before_the_first_call_is_waited_out_but_a_sent_call_is_not_retried() {
    let mut world = World::new(good_rows(2));
    world.stigg = MockStiggGateway::new();
    let first_try = Arc::new(Mutex::new(HashSet::<String>::new()));
    world
        .stigg
        .expect_provision_customer()
        .returning(move |c, _| {
            let org = c.customer_id.to_string();
            if lock(&first_try).insert(org.clone()) {
                // Nothing sent: the steps before it ate the whole deadline.
                return Err(StiggError::DeadlinePassed);
            }
            if org == "org_2" {
                // Sent, and failed: this is Stigg's answer, reported as it is.
                return Err(StiggError::Unavailable {
                    attempts: 1,
                    cause: "timeout after 5s".into(),
                });
            }
            Ok(StiggCustomer { id: org })
        });
    world.stigg_subscriptions_succeed();
    let (clock, sleeps) = fake_clock();
    let use_case = world.use_case(Arc::new(clock), policy(10));
    let options = ReconcileOptions {
        concurrency: NonZeroUsize::MIN,
        ..options()
    };

    let summary = use_case.execute(&options, &NoObserver, &NeverStop).await;

    assert_eq!(summary.provisioned, 1, "{summary:?}");
    assert_eq!(
        failed_reasons(&summary),
        [(
            "sub_A2".to_owned(),
            "Stigg API unavailable after 1 attempt (timeout after 5s)".to_owned()
        )]
    );
    // One pause per item, after its unsent first try; none after the sent one.
    assert_eq!(lock(&sleeps).len(), 2);
}
