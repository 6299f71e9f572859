//! The use case against mockall doubles of every port. A port without an expectation panics
//! when called, so each test also proves what was *not* called (e.g. Stigg on a 404).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use mockall::predicate::always;

use super::*;
use crate::model::{BillingPeriod, Plan, PlanCode, ProvisionedSubscription, SubscriptionStatus};
use crate::ports::{
    MockClock, MockLeaseStore, MockOrgRepo, MockProvisioningStore, MockStiggGateway,
    MockSubscriptionRepo, StiggCustomer, StiggSubscription, TrialConfiguration,
};

fn parse<T: std::str::FromStr>(raw: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    raw.parse()
        .unwrap_or_else(|e| panic!("test id {raw:?} should parse: {e:?}"))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
        .single()
        .expect("valid date")
}

fn request() -> ProvisionRequest {
    ProvisionRequest {
        org_id: parse("org_1"),
        stripe_customer_id: parse("cus_A1"),
        stripe_subscription_id: parse("sub_A1"),
        plan: Plan {
            code: parse::<PlanCode>("plan_starter_m"),
            stigg_plan_id: "plan-starter".into(),
            billing_period: BillingPeriod::Monthly,
        },
    }
}

fn ctx() -> OperationContext {
    OperationContext {
        correlation_id: parse("corr-1"),
        tenant_id: None,
    }
}

fn org() -> Organization {
    Organization {
        id: parse("org_1"),
        name: "Acme".into(),
        email: Some("ops@acme.test".into()),
        tenant_id: Some(Stored::parse("tenant-a".into())),
        stripe_customer_id: Some(Stored::parse("cus_A1".into())),
    }
}

fn subscription() -> Subscription {
    Subscription {
        id: "s_1".into(),
        organization_id: Stored::parse("org_1".into()),
        stripe_subscription_id: parse("sub_A1"),
        plan_code: Stored::parse("plan_starter_m".into()),
        status: SubscriptionStatus::Trialing,
        trial_ends_at: Some(t0() + chrono::Duration::days(14)),
    }
}

fn lease() -> Lease {
    Lease {
        key: LeaseKey::subscription(&parse("sub_A1")),
        holder: "holder-1".into(),
        expires_at: t0() + chrono::Duration::seconds(20),
    }
}

fn done() -> ProvisionedSubscription {
    ProvisionedSubscription {
        org_id: parse("org_1"),
        stripe_subscription_id: parse("sub_A1"),
        stigg_customer_id: "org_1".into(),
        stigg_subscription_id: "sub_A1".into(),
        provisioned_at: t0(),
    }
}

/// A clock whose monotonic time moves only when the use case sleeps.
fn fake_clock() -> (MockClock, Arc<Mutex<Duration>>) {
    let base = Instant::now();
    let slept = Arc::new(Mutex::new(Duration::ZERO));
    let mut clock = MockClock::new();
    clock.expect_now().returning(t0);
    let read = Arc::clone(&slept);
    clock
        .expect_monotonic()
        .returning(move || base + *read.lock().unwrap_or_else(PoisonError::into_inner));
    let write = Arc::clone(&slept);
    clock.expect_sleep().returning(move |d| {
        *write.lock().unwrap_or_else(PoisonError::into_inner) += d;
    });
    (clock, slept)
}

struct Ports {
    orgs: MockOrgRepo,
    subscriptions: MockSubscriptionRepo,
    store: MockProvisioningStore,
    leases: MockLeaseStore,
    stigg: MockStiggGateway,
}

impl Ports {
    /// Organization and subscription as seeded; nothing else expected yet.
    fn found() -> Self {
        let mut ports = Self::empty();
        ports.orgs.expect_find().returning(|_| Ok(Some(org())));
        ports
            .subscriptions
            .expect_find_by_stripe_id()
            .returning(|_| Ok(Some(subscription())));
        ports
    }

    fn empty() -> Self {
        Self {
            orgs: MockOrgRepo::new(),
            subscriptions: MockSubscriptionRepo::new(),
            store: MockProvisioningStore::new(),
            leases: MockLeaseStore::new(),
            stigg: MockStiggGateway::new(),
        }
    }

    fn use_case(self) -> ProvisionSubscription {
        self.use_case_with_clock(fake_clock().0)
    }

    fn use_case_with_clock(self, clock: MockClock) -> ProvisionSubscription {
        self.use_case_with(clock, ProvisioningPolicy::default())
    }

    fn use_case_with(self, clock: MockClock, policy: ProvisioningPolicy) -> ProvisionSubscription {
        ProvisionSubscription::new(
            Arc::new(self.orgs),
            Arc::new(self.subscriptions),
            Arc::new(self.store),
            Arc::new(self.leases),
            Arc::new(self.stigg),
            Arc::new(clock),
            policy,
        )
    }

    fn pending(&mut self, customer: Option<ProvisionedCustomer>) {
        self.store.expect_load().returning(move |_, _| {
            Ok(ProvisioningState::Pending {
                customer: customer.clone(),
            })
        });
    }

    /// The subscription's lease is free: taken once, the attempt counted, and the lease
    /// given back once, whatever the outcome.
    fn lease_granted(&mut self) {
        self.leases
            .expect_try_take()
            .withf(|key, _, ttl| {
                key.as_str() == "subscription:sub_A1" && *ttl == Duration::from_secs(20)
            })
            .times(1)
            .returning(|_, _, _| Ok(Some(lease())));
        self.store
            .expect_start_attempt()
            .times(1)
            .returning(|_, _, _| Ok(true));
        self.leases
            .expect_release()
            .withf(|lease| lease.holder == "holder-1")
            .times(1)
            .returning(|_| Ok(()));
    }
}

#[tokio::test]
async fn happy_path_provisions_customer_then_subscription_and_records_both() {
    let mut ports = Ports::found();
    ports.pending(None);
    ports.lease_granted();
    ports
        .stigg
        .expect_provision_customer()
        .withf(|c, _| {
            c.customer_id.as_str() == "org_1"
                && c.name == "Acme"
                && c.billing_id.as_str() == "cus_A1"
                && c.email.as_deref() == Some("ops@acme.test")
        })
        .times(1)
        .returning(|_, _| Ok(StiggCustomer { id: "org_1".into() }));
    ports
        .store
        .expect_record_customer()
        .withf(|c| c.org_id.as_str() == "org_1" && c.stigg_customer_id == "org_1")
        .times(1)
        .returning(|_| Ok(()));
    ports
        .stigg
        .expect_provision_subscription()
        .withf(|s, _| {
            s.subscription_id.as_str() == "sub_A1"
                && s.customer_id.as_str() == "org_1"
                && s.stigg_plan_id == "plan-starter"
                && s.billing_period == BillingPeriod::Monthly
                && s.trial
                    == Some(TrialConfiguration {
                        ends_at: Some(t0() + chrono::Duration::days(14)),
                    })
        })
        .times(1)
        .returning(|_, _| {
            Ok(StiggSubscription {
                id: "sub_A1".into(),
            })
        });
    ports
        .store
        .expect_record_subscription()
        .withf(|s| s.stigg_subscription_id == "sub_A1" && s.stigg_customer_id == "org_1")
        .times(1)
        .returning(|_| Ok(()));

    let provisioned = ports.use_case().execute(&request(), &ctx()).await;

    assert_eq!(
        provisioned,
        Ok(Provisioned {
            stigg_customer_id: "org_1".into(),
            stigg_subscription_id: "sub_A1".into(),
            already_provisioned: false,
        })
    );
}

#[tokio::test]
async fn correlation_id_and_deadline_reach_every_stigg_call() {
    let (clock, _) = fake_clock();
    let start = clock.monotonic();
    let mut ports = Ports::found();
    ports.pending(None);
    ports.lease_granted();
    let carries_context = move |ctx: &CallContext| {
        ctx.correlation_id.as_str() == "corr-1" && ctx.deadline == start + Duration::from_secs(15)
    };
    ports
        .stigg
        .expect_provision_customer()
        .withf(move |_, ctx| carries_context(ctx))
        .times(1)
        .returning(|_, _| Ok(StiggCustomer { id: "org_1".into() }));
    ports
        .stigg
        .expect_provision_subscription()
        .withf(move |_, ctx| carries_context(ctx))
        .times(1)
        .returning(|_, _| {
            Ok(StiggSubscription {
                id: "sub_A1".into(),
            })
        });
    ports.store.expect_record_customer().returning(|_| Ok(()));
    ports
        .store
        .expect_record_subscription()
        .returning(|_| Ok(()));

    let result = ports
        .use_case_with_clock(clock)
        .execute(&request(), &ctx())
        .await;
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn unknown_organization_is_not_found_and_nothing_else_happens() {
    let mut ports = Ports::empty();
    ports.orgs.expect_find().returning(|_| Ok(None));
    ports
        .subscriptions
        .expect_find_by_stripe_id()
        .returning(|_| Ok(Some(subscription())));

    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert_eq!(
        result,
        Err(ProvisionError::OrganizationNotFound {
            org_id: parse("org_1")
        })
    );
}

#[tokio::test]
async fn organization_of_another_tenant_is_not_found() {
    let ports = Ports::found();
    let ctx = OperationContext {
        tenant_id: Some(parse("tenant-b")),
        ..ctx()
    };
    let result = ports.use_case().execute(&request(), &ctx).await;
    assert!(matches!(
        result,
        Err(ProvisionError::OrganizationNotFound { .. })
    ));
}

#[tokio::test]
async fn organization_of_the_given_tenant_is_found() {
    let mut ports = Ports::found();
    ports
        .store
        .expect_load()
        .returning(|_, _| Ok(ProvisioningState::Done(done())));
    let ctx = OperationContext {
        tenant_id: Some(parse("tenant-a")),
        ..ctx()
    };
    let result = ports.use_case().execute(&request(), &ctx).await;
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn stripe_customer_of_another_organization_is_not_found() {
    let ports = Ports::found();
    let request = ProvisionRequest {
        stripe_customer_id: parse("cus_B2"),
        ..request()
    };
    let result = ports.use_case().execute(&request, &ctx()).await;
    assert!(matches!(
        result,
        Err(ProvisionError::StripeCustomerNotFound { .. })
    ));
}

#[tokio::test]
async fn stored_ids_that_break_their_rule_match_no_request() {
    // Another system stored "cus_A1 " and "tenant-a\n": neither is the request's value, even
    // though they read alike, so the organization is not found for this tenant or customer.
    for (tenant, customer, tenant_header, customer_not_found) in [
        ("tenant-a", "cus_A1 ", None, true),
        ("tenant-a\n", "cus_A1", Some("tenant-a"), false),
    ] {
        let mut ports = Ports::empty();
        let stored = Organization {
            tenant_id: Some(Stored::parse(tenant.into())),
            stripe_customer_id: Some(Stored::parse(customer.into())),
            ..org()
        };
        ports
            .orgs
            .expect_find()
            .returning(move |_| Ok(Some(stored.clone())));
        ports
            .subscriptions
            .expect_find_by_stripe_id()
            .returning(|_| Ok(Some(subscription())));
        let ctx = OperationContext {
            tenant_id: tenant_header.map(parse),
            ..ctx()
        };
        let result = ports.use_case().execute(&request(), &ctx).await;
        let as_expected = if customer_not_found {
            matches!(result, Err(ProvisionError::StripeCustomerNotFound { .. }))
        } else {
            matches!(result, Err(ProvisionError::OrganizationNotFound { .. }))
        };
        assert!(as_expected, "{tenant:?} / {customer:?}: {result:?}");
    }
}

#[tokio::test]
async fn unknown_subscription_is_not_found() {
    let mut ports = Ports::empty();
    ports.orgs.expect_find().returning(|_| Ok(Some(org())));
    ports
        .subscriptions
        .expect_find_by_stripe_id()
        .returning(|_| Ok(None));
    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert_eq!(
        result,
        Err(ProvisionError::SubscriptionNotFound {
            org_id: parse("org_1"),
            stripe_subscription_id: parse("sub_A1"),
        })
    );
}

#[tokio::test]
async fn subscription_of_another_organization_is_not_found() {
    let mut ports = Ports::empty();
    ports.orgs.expect_find().returning(|_| Ok(Some(org())));
    ports
        .subscriptions
        .expect_find_by_stripe_id()
        .returning(|_| {
            Ok(Some(Subscription {
                organization_id: Stored::parse("org_2".into()),
                ..subscription()
            }))
        });
    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert!(matches!(
        result,
        Err(ProvisionError::SubscriptionNotFound { .. })
    ));
}

#[tokio::test]
async fn plan_other_than_the_subscriptions_is_refused() {
    let mut ports = Ports::empty();
    ports.orgs.expect_find().returning(|_| Ok(Some(org())));
    ports
        .subscriptions
        .expect_find_by_stripe_id()
        .returning(|_| {
            Ok(Some(Subscription {
                plan_code: Stored::parse("plan_pro_m".into()),
                ..subscription()
            }))
        });
    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert_eq!(
        result,
        Err(ProvisionError::PlanMismatch {
            requested: parse("plan_starter_m"),
            actual: "plan_pro_m".into(),
        })
    );
}

#[tokio::test]
async fn stigg_failure_is_recorded_and_the_lease_given_back() {
    let mut ports = Ports::found();
    ports.pending(None);
    ports.lease_granted();
    let unavailable = StiggError::Unavailable {
        attempts: 3,
        cause: "HTTP 503".into(),
    };
    let returned = unavailable.clone();
    ports
        .stigg
        .expect_provision_customer()
        .times(1)
        .returning(move |_, _| Err(returned.clone()));
    ports
        .store
        .expect_record_failure()
        .withf(|sub, why| sub.as_str() == "sub_A1" && why.contains("after 3 attempts (HTTP 503)"))
        .times(1)
        .returning(|_, _| Ok(()));

    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert_eq!(result, Err(ProvisionError::Stigg(unavailable)));
}

#[tokio::test]
async fn failure_after_the_customer_step_keeps_the_customer_recorded() {
    let mut ports = Ports::found();
    ports.pending(None);
    ports.lease_granted();
    ports
        .stigg
        .expect_provision_customer()
        .returning(|_, _| Ok(StiggCustomer { id: "org_1".into() }));
    ports
        .store
        .expect_record_customer()
        .times(1)
        .returning(|_| Ok(()));
    ports
        .stigg
        .expect_provision_subscription()
        .returning(|_, _| Err(StiggError::Unauthorized));
    ports
        .store
        .expect_record_failure()
        .times(1)
        .returning(|_, _| Ok(()));

    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert_eq!(result, Err(ProvisionError::Stigg(StiggError::Unauthorized)));
}

#[tokio::test]
async fn already_provisioned_answers_from_the_record_without_stigg() {
    let mut ports = Ports::found();
    ports
        .store
        .expect_load()
        .times(1)
        .returning(|_, _| Ok(ProvisioningState::Done(done())));

    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert_eq!(
        result,
        Ok(Provisioned {
            stigg_customer_id: "org_1".into(),
            stigg_subscription_id: "sub_A1".into(),
            already_provisioned: true,
        })
    );
}

#[tokio::test]
async fn resumes_with_the_subscription_when_the_customer_is_recorded() {
    let mut ports = Ports::found();
    ports.pending(Some(ProvisionedCustomer {
        org_id: parse("org_1"),
        stigg_customer_id: "org_1".into(),
        billing_id: parse("cus_A1"),
        provisioned_at: t0(),
    }));
    ports.lease_granted();
    // No provision_customer expectation: calling it would fail the test.
    ports
        .stigg
        .expect_provision_subscription()
        .times(1)
        .returning(|_, _| {
            Ok(StiggSubscription {
                id: "sub_A1".into(),
            })
        });
    ports
        .store
        .expect_record_subscription()
        .times(1)
        .returning(|_| Ok(()));

    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert_eq!(result.map(|p| p.already_provisioned), Ok(false));
}

#[tokio::test]
async fn active_subscription_is_provisioned_without_a_trial() {
    let mut ports = Ports::empty();
    ports.orgs.expect_find().returning(|_| Ok(Some(org())));
    ports
        .subscriptions
        .expect_find_by_stripe_id()
        .returning(|_| {
            Ok(Some(Subscription {
                status: SubscriptionStatus::Active,
                ..subscription()
            }))
        });
    ports.pending(None);
    ports.lease_granted();
    ports
        .stigg
        .expect_provision_customer()
        .returning(|_, _| Ok(StiggCustomer { id: "org_1".into() }));
    ports.store.expect_record_customer().returning(|_| Ok(()));
    ports
        .stigg
        .expect_provision_subscription()
        .withf(|s, _| s.trial.is_none())
        .times(1)
        .returning(|_, _| {
            Ok(StiggSubscription {
                id: "sub_A1".into(),
            })
        });
    ports
        .store
        .expect_record_subscription()
        .returning(|_| Ok(()));

    assert!(ports.use_case().execute(&request(), &ctx()).await.is_ok());
}

#[tokio::test]
async fn waits_for_another_holder_and_answers_with_its_result() {
    let mut ports = Ports::found();
    let mut loads = 0;
    ports.store.expect_load().times(3).returning(move |_, _| {
        loads += 1;
        Ok(if loads < 3 {
            ProvisioningState::Pending { customer: None }
        } else {
            ProvisioningState::Done(done())
        })
    });
    ports
        .leases
        .expect_try_take()
        .times(2)
        .returning(|_, _, _| Ok(None));
    let (clock, slept) = fake_clock();

    let result = ports
        .use_case_with_clock(clock)
        .execute(&request(), &ctx())
        .await;

    assert_eq!(result.map(|p| p.already_provisioned), Ok(true));
    // Two pauses, the second twice the first.
    assert_eq!(
        *slept.lock().unwrap_or_else(PoisonError::into_inner),
        Duration::from_millis(20 + 40)
    );
}

#[tokio::test]
async fn gives_up_waiting_at_the_deadline() {
    let mut ports = Ports::found();
    ports.pending(None);
    ports.leases.expect_try_take().returning(|_, _, _| Ok(None));
    let other_holders_end = t0() + chrono::Duration::seconds(65);
    ports
        .leases
        .expect_expiry()
        .times(1)
        .returning(move |_| Ok(Some(other_holders_end)));
    let (clock, slept) = fake_clock();

    let result = ports
        .use_case_with_clock(clock)
        .execute(&request(), &ctx())
        .await;

    assert_eq!(
        result,
        Err(ProvisionError::InProgress {
            stripe_subscription_id: parse("sub_A1"),
            until: Some(other_holders_end),
        })
    );
    assert_eq!(
        result.err().map(|e| e.to_string()).unwrap_or_default(),
        "subscription 'sub_A1' is being provisioned by another request (its lease ends by \
         2026-11-24T12:01:05Z); retry later"
    );
    let waited = *slept.lock().unwrap_or_else(PoisonError::into_inner);
    assert!(waited <= Duration::from_secs(15), "waited {waited:?}");
    assert!(
        waited > Duration::from_secs(14),
        "gave up early: {waited:?}"
    );
}

/// A batch does not wait for another holder: it is told at once and goes on.
#[tokio::test]
async fn a_caller_that_does_not_wait_for_the_holder_is_told_at_once() {
    let mut ports = Ports::found();
    ports.pending(None);
    ports
        .leases
        .expect_try_take()
        .times(1)
        .returning(|_, _, _| Ok(None));
    ports.leases.expect_expiry().never();
    let (clock, slept) = fake_clock();
    let policy = ProvisioningPolicy {
        wait_for_holder: false,
        ..ProvisioningPolicy::default()
    };

    let result = ports
        .use_case_with(clock, policy)
        .execute(&request(), &ctx())
        .await;

    assert!(
        matches!(result, Err(ProvisionError::InProgress { .. })),
        "{result:?}"
    );
    assert_eq!(
        *slept.lock().unwrap_or_else(PoisonError::into_inner),
        Duration::ZERO
    );
}

#[tokio::test]
async fn a_failed_record_is_an_error_and_gives_the_lease_back() {
    // Recording the failure fails too: the lease is still given back, and the first error
    // is the one reported.
    let mut ports = Ports::found();
    ports.pending(None);
    ports.lease_granted();
    ports
        .stigg
        .expect_provision_customer()
        .returning(|_, _| Ok(StiggCustomer { id: "org_1".into() }));
    ports
        .store
        .expect_record_customer()
        .returning(|_| Err(RepoError::Unavailable("pool timed out".into())));
    ports
        .store
        .expect_record_failure()
        .with(always(), always())
        .times(1)
        .returning(|_, _| Err(RepoError::Unavailable("pool timed out".into())));

    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert_eq!(
        result,
        Err(ProvisionError::Store(RepoError::Unavailable(
            "pool timed out".into()
        )))
    );
}

#[tokio::test]
async fn a_database_failure_on_lookup_is_an_error() {
    let mut ports = Ports::empty();
    ports
        .orgs
        .expect_find()
        .returning(|_| Err(RepoError::Unexpected("disk I/O error".into())));
    ports
        .subscriptions
        .expect_find_by_stripe_id()
        .returning(|_| Ok(None));
    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert!(matches!(result, Err(ProvisionError::Store(_))));
}

#[tokio::test]
async fn a_subscription_stripe_grants_no_access_for_is_never_provisioned() {
    for status in [
        "canceled",
        "unpaid",
        "paused",
        "incomplete",
        "incomplete_expired",
    ] {
        let mut ports = Ports::empty();
        ports.orgs.expect_find().returning(|_| Ok(Some(org())));
        let stored = Subscription {
            status: SubscriptionStatus::parse(status),
            ..subscription()
        };
        ports
            .subscriptions
            .expect_find_by_stripe_id()
            .returning(move |_| Ok(Some(stored.clone())));
        // No store, lease or Stigg expectation: touching any of them panics.
        let result = ports.use_case().execute(&request(), &ctx()).await;
        match result {
            Err(ProvisionError::NotProvisionable {
                stripe_subscription_id,
                status: refused,
            }) => {
                assert_eq!(stripe_subscription_id.as_str(), "sub_A1");
                assert_eq!(refused.as_str(), status);
            }
            other => panic!("{status}: {other:?}"),
        }
    }
}

fn recorded_customer(billing_id: &str) -> ProvisionedCustomer {
    ProvisionedCustomer {
        org_id: parse("org_1"),
        stigg_customer_id: "org_1".into(),
        billing_id: parse(billing_id),
        provisioned_at: t0(),
    }
}

#[tokio::test]
async fn a_customer_recorded_with_another_billing_id_is_provisioned_again() {
    let mut ports = Ports::found();
    // Recorded when the organization was billed as cus_OLD1; the request says cus_A1.
    ports.pending(Some(recorded_customer("cus_OLD1")));
    ports.lease_granted();
    ports
        .stigg
        .expect_provision_customer()
        .withf(|c, _| c.billing_id.as_str() == "cus_A1")
        .times(1)
        .returning(|_, _| Ok(StiggCustomer { id: "org_1".into() }));
    ports
        .store
        .expect_record_customer()
        .withf(|c| c.billing_id.as_str() == "cus_A1")
        .times(1)
        .returning(|_| Ok(()));
    ports
        .stigg
        .expect_provision_subscription()
        .times(1)
        .returning(|_, _| {
            Ok(StiggSubscription {
                id: "sub_A1".into(),
            })
        });
    ports
        .store
        .expect_record_subscription()
        .times(1)
        .returning(|_| Ok(()));

    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert_eq!(result.map(|p| p.already_provisioned), Ok(false));
}

#[tokio::test]
async fn a_customer_missing_in_stigg_is_forgotten_and_provisioned_again_once() {
    let mut ports = Ports::found();
    ports.pending(Some(recorded_customer("cus_A1")));
    ports.lease_granted();
    let subscription_calls = Arc::new(Mutex::new(0_u32));
    let calls = Arc::clone(&subscription_calls);
    ports
        .stigg
        .expect_provision_subscription()
        .times(2)
        .returning(move |_, _| {
            let mut calls = calls.lock().unwrap_or_else(PoisonError::into_inner);
            *calls += 1;
            if *calls == 1 {
                Err(StiggError::CustomerNotFound {
                    operation: "provision_subscription",
                    message: "Customer not found: org_1".into(),
                })
            } else {
                Ok(StiggSubscription {
                    id: "sub_A1".into(),
                })
            }
        });
    let mut order = mockall::Sequence::new();
    ports
        .store
        .expect_forget_customer()
        .withf(|org| org.as_str() == "org_1")
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(()));
    ports
        .stigg
        .expect_provision_customer()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(StiggCustomer { id: "org_1".into() }));
    ports
        .store
        .expect_record_customer()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(()));
    ports
        .store
        .expect_record_subscription()
        .times(1)
        .returning(|_| Ok(()));

    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert_eq!(result.map(|p| p.already_provisioned), Ok(false));
}

#[tokio::test]
async fn a_customer_still_missing_after_one_new_provisioning_fails_the_attempt() {
    let mut ports = Ports::found();
    ports.pending(Some(recorded_customer("cus_A1")));
    ports.lease_granted();
    ports
        .stigg
        .expect_provision_subscription()
        .times(2)
        .returning(|_, _| {
            Err(StiggError::CustomerNotFound {
                operation: "provision_subscription",
                message: "Customer not found: org_1".into(),
            })
        });
    ports
        .store
        .expect_forget_customer()
        .times(1)
        .returning(|_| Ok(()));
    ports
        .stigg
        .expect_provision_customer()
        .times(1)
        .returning(|_, _| Ok(StiggCustomer { id: "org_1".into() }));
    ports.store.expect_record_customer().returning(|_| Ok(()));
    ports
        .store
        .expect_record_failure()
        .times(1)
        .returning(|_, _| Ok(()));

    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert!(
        matches!(
            result,
            Err(ProvisionError::Stigg(StiggError::CustomerNotFound { .. }))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_holder_that_finished_first_is_answered_from_its_record() {
    // Pending when read, provisioned by the time the lease is ours: nothing is counted, the
    // lease goes back at once, and the answer comes from the record without Stigg.
    let mut ports = Ports::found();
    let mut loads = 0;
    ports.store.expect_load().times(2).returning(move |_, _| {
        loads += 1;
        Ok(if loads == 1 {
            ProvisioningState::Pending { customer: None }
        } else {
            ProvisioningState::Done(done())
        })
    });
    ports
        .leases
        .expect_try_take()
        .times(1)
        .returning(|_, _, _| Ok(Some(lease())));
    ports
        .store
        .expect_start_attempt()
        .times(1)
        .returning(|_, _, _| Ok(false));
    ports.leases.expect_release().times(1).returning(|_| Ok(()));

    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert_eq!(result.map(|p| p.already_provisioned), Ok(true));
}

#[tokio::test]
async fn a_store_failure_when_counting_the_attempt_gives_the_lease_back() {
    let mut ports = Ports::found();
    ports.pending(None);
    ports
        .leases
        .expect_try_take()
        .times(1)
        .returning(|_, _, _| Ok(Some(lease())));
    ports
        .store
        .expect_start_attempt()
        .times(1)
        .returning(|_, _, _| Err(RepoError::Unavailable("connection lost".into())));
    ports.leases.expect_release().times(1).returning(|_| Ok(()));

    let result = ports.use_case().execute(&request(), &ctx()).await;
    assert_eq!(
        result,
        Err(ProvisionError::Store(RepoError::Unavailable(
            "connection lost".into()
        )))
    );
}
