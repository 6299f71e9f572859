//! `onboarding reconcile` end to end: the real services (`Services::build` from command-line
//! settings) on a fresh database seeded with plain SQL (SQLite, and PostgreSQL for the main
//! run), against a Stigg emulator of the test's own.

use std::time::Duration;

use clap::Parser;
use onboarding_adapters_db::Backend;
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_app::cli::Cli;
use onboarding_app::cli::reconcile::{ReconcileArgs, reconcile};
use onboarding_app::config::StiggUse;
use onboarding_app::startup::{Services, StopFlag, batch_deadline};
use onboarding_domain::use_cases::OperationContext;
use onboarding_domain::use_cases::provision_subscription::ProvisionRequest;
use onboarding_domain::use_cases::reconcile_provisioning::{
    NoObserver, ReconcileOptions, ReconcileSummary,
};
use stigg_emulator::{
    EmulatorConfig, EntityKind, LoggedRequest, RateLimit, RetryAfterHint, RunningEmulator,
};

use crate::helpers::on_both_backends;

const KEY: &str = "reconcile-test-key";

/// A database, an emulator, and the services the command builds from its settings.
struct Setup {
    db: TestDatabase,
    stigg: RunningEmulator,
    services: Services,
}

impl Setup {
    /// Services built as the command builds them for `--concurrency concurrency`.
    async fn start(
        backend: Backend,
        rate_limit: Option<RateLimit>,
        extra_args: &[&str],
        concurrency: u16,
    ) -> Self {
        onboarding_app::telemetry::init_for_tests();
        let db = TestDatabase::new(backend).await;
        let stigg = RunningEmulator::start_on_loopback(EmulatorConfig {
            api_key: KEY.into(),
            rate_limit,
            ..EmulatorConfig::default()
        })
        .await
        .expect("emulator");
        let mut args = vec![
            "onboarding".to_owned(),
            format!("--database-url={}", db.url()),
            format!("--stigg-api-url={}", stigg.base_url()),
            format!("--stigg-api-key={KEY}"),
        ];
        args.extend(extra_args.iter().map(|a| (*a).to_owned()));
        args.push("reconcile".to_owned());
        let cli = Cli::try_parse_from(&args).unwrap();
        let deadline = batch_deadline(&cli.settings, concurrency);
        let stigg_use = StiggUse::OneShot {
            command: "reconcile",
            emulator: false,
        };
        let services = Services::build_with_deadline(&cli.settings, deadline, stigg_use, None)
            .await
            .expect("services");
        Self {
            db,
            stigg,
            services,
        }
    }

    async fn exec(&self, sql: &str) {
        self.db
            .execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn count(&self, sql: &str) -> i64 {
        self.db
            .count(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn run(&self, options: &ReconcileOptions) -> ReconcileSummary {
        reconcile(&self.services, options, &NoObserver, &StopFlag::default()).await
    }

    fn requests(&self) -> Vec<LoggedRequest> {
        self.stigg.emulator().requests()
    }

    fn posts(&self, path: &str) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == path)
            .collect()
    }
}

fn options(run_id: &str, dry_run: bool, concurrency: u16) -> ReconcileOptions {
    ReconcileArgs {
        dry_run,
        limit: None,
        concurrency,
        json: false,
        emulator: false,
    }
    .options(run_id)
}

/// `orgs` organizations `org_r01..` (Stripe customers `cus_R01..`, every other one in a
/// tenant) with `per_org` subscriptions each, `sub_R01..` in order.
fn seed_sql(orgs: usize, per_org: usize, plan_of: impl Fn(usize) -> &'static str) -> String {
    let mut sql = String::new();
    for o in 1..=orgs {
        let tenant = if o.is_multiple_of(2) {
            "'tenant-e'"
        } else {
            "NULL"
        };
        sql.push_str(&format!(
            "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) \
             VALUES ('org_r{o:02}', 'Org {o}', {tenant}, 'cus_R{o:02}');\n"
        ));
        for k in 1..=per_org {
            let i = (o - 1) * per_org + k;
            let (status, trial_end) = if i.is_multiple_of(4) {
                ("active", "NULL")
            } else {
                ("trialing", "'2030-01-15 00:00:00'")
            };
            sql.push_str(&format!(
                "INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at) \
                 VALUES ('s_r{i:02}', 'org_r{o:02}', 'sub_R{i:02}', '{}', '{status}', {trial_end});\n",
                plan_of(i)
            ));
        }
    }
    sql
}

/// Provisions one seeded subscription the way the API does.
async fn provision_through_the_api_use_case(setup: &Setup, org: &str, sub: &str, plan: &str) {
    let plan = setup
        .services
        .catalog
        .get(&plan.parse().unwrap())
        .cloned()
        .unwrap_or_else(|| panic!("{plan} not in the catalog"));
    let request = ProvisionRequest {
        org_id: org.parse().unwrap(),
        stripe_customer_id: format!("cus_R{}", &org[5..]).parse().unwrap(),
        stripe_subscription_id: sub.parse().unwrap(),
        plan,
    };
    let ctx = OperationContext {
        correlation_id: "api-call".parse().unwrap(),
        tenant_id: None,
    };
    let done = setup
        .services
        .provision
        .execute(&request, &ctx)
        .await
        .unwrap_or_else(|e| panic!("provisioning {sub}: {e}"));
    assert!(!done.already_provisioned);
}

on_both_backends!(provisions_every_pending_subscription_once_and_a_second_run_does_nothing);

async fn provisions_every_pending_subscription_once_and_a_second_run_does_nothing(
    backend: Backend,
) {
    let setup = Setup::start(
        backend,
        None,
        // Fast: this test is about what gets provisioned, the next one about the pace.
        &["--stigg-calls-per-minute=6000"],
        4,
    )
    .await;
    let plans = [
        "plan_starter_m",
        "plan_pro_y",
        "plan_starter_y",
        "plan_pro_m",
    ];
    setup
        .exec(&seed_sql(10, 3, |i| {
            if i == 7 { "plan_gone" } else { plans[i % 4] }
        }))
        .await;
    // Done before the run: org_r01 entirely, and the first subscription of org_r02 (so its
    // customer exists in Stigg and is recorded).
    for (org, sub) in [
        ("org_r01", "sub_R01"),
        ("org_r01", "sub_R02"),
        ("org_r01", "sub_R03"),
        ("org_r02", "sub_R04"),
    ] {
        let i: usize = sub[5..].parse().unwrap();
        provision_through_the_api_use_case(&setup, org, sub, plans[i % 4]).await;
    }
    // Stopped halfway: an earlier attempt took the lease and never came back.
    setup
        .exec(
            "INSERT INTO stigg_subscription_provisions \
             (stripe_subscription_id, organization_id, attempts, last_error, updated_at) \
             VALUES ('sub_R10', 'org_r04', 1, 'connection reset', '2020-01-01 00:00:00'); \
             INSERT INTO leases (lease_key, holder, expires_at, taken_at) \
             VALUES ('subscription:sub_R10', 'crashed-holder', '2020-01-01 00:00:00', '2020-01-01 00:00:00')",
        )
        .await;
    let emulator = setup.stigg.emulator();
    assert_eq!(emulator.created_count(EntityKind::Customer), 2);
    assert_eq!(emulator.created_count(EntityKind::Subscription), 4);
    let requests_before = setup.requests().len();

    // A dry run lists the 25 it would provision and the one it cannot, and changes nothing.
    let dry = setup.run(&options("dry", true, 4)).await;
    assert_eq!(dry.total, Some(26));
    assert_eq!(dry.would_provision.len(), 25);
    assert_eq!(dry.would_provision[0].stripe_subscription_id, "sub_R05");
    assert!(
        dry.would_provision
            .iter()
            .all(|p| p.stripe_subscription_id != "sub_R07")
    );
    assert_eq!(dry.failed.len(), 1);
    assert_eq!(dry.provisioned, 0);
    assert_eq!(
        setup.requests().len(),
        requests_before,
        "a dry run called Stigg"
    );
    assert_eq!(
        setup
            .count("SELECT CAST(attempts AS BIGINT) AS n FROM stigg_subscription_provisions WHERE stripe_subscription_id = 'sub_R10'")
            .await,
        1
    );

    let first = setup.run(&options("first", false, 4)).await;
    assert_eq!(first.total, Some(26));
    assert_eq!(first.provisioned, 25, "{first:?}");
    assert_eq!(first.already_provisioned, 0);
    assert_eq!(first.interrupted, 0);
    assert_eq!(first.halt, None);
    assert_eq!(first.failed.len(), 1, "{first:?}");
    assert_eq!(first.failed[0].stripe_subscription_id, "sub_R07");
    assert_eq!(first.failed[0].org_id.as_deref(), Some("org_r03"));
    assert_eq!(first.failed[0].reason, "unknown plan code 'plan_gone'");

    // Every organization's customer once, every subscription but sub_R07 once.
    assert_eq!(emulator.created_count(EntityKind::Customer), 10);
    assert_eq!(emulator.created_count(EntityKind::Subscription), 29);
    assert_eq!(setup.posts("/api/v1/customers").len(), 10);
    assert_eq!(setup.posts("/api/v1/subscriptions").len(), 29);
    let run_calls: Vec<_> = setup.requests()[requests_before..].to_vec();
    assert_eq!(run_calls.len(), 8 + 25);
    for call in &run_calls {
        let correlation = call.correlation_id.as_deref().unwrap_or_default();
        assert!(
            correlation.starts_with("reconcile-first-sub_R"),
            "{correlation:?}"
        );
        assert!((200..300).contains(&call.status), "{call:?}");
    }
    // The tenant of even organizations reached Stigg with their customer.
    let org_r04 = emulator
        .customers()
        .into_iter()
        .find(|c| c["id"] == "org_r04")
        .expect("org_r04 not created");
    assert_eq!(org_r04["metadata"]["tenantId"], "tenant-e", "{org_r04}");
    assert_eq!(
        setup
            .count("SELECT count(*) AS n FROM stigg_subscription_provisions WHERE provisioned_at IS NOT NULL")
            .await,
        29
    );
    // The subscription stopped halfway was taken over once its lease had lapsed.
    assert_eq!(
        setup
            .count("SELECT CAST(attempts AS BIGINT) AS n FROM stigg_subscription_provisions WHERE stripe_subscription_id = 'sub_R10'")
            .await,
        2
    );

    // Resumable: the second run finds only the one it cannot provision, and calls nobody.
    let requests_after_first = setup.requests().len();
    let second = setup.run(&options("second", false, 4)).await;
    assert_eq!(second.total, Some(1));
    assert_eq!(second.provisioned, 0);
    assert_eq!(second.failed.len(), 1);
    assert_eq!(second.failed[0].stripe_subscription_id, "sub_R07");
    assert_eq!(setup.requests().len(), requests_after_first);
    assert_eq!(emulator.created_count(EntityKind::Subscription), 29);
}

#[tokio::test]
async fn runs_at_the_rate_limit_without_drawing_a_429() {
    const PER_MINUTE: u32 = 120;
    const ITEMS: usize = 8;
    const CONCURRENCY: u16 = 8;
    let setup = Setup::start(
        Backend::Sqlite,
        Some(RateLimit {
            per_operation_per_minute: PER_MINUTE,
            per_customer_per_minute: 30,
            retry_after: RetryAfterHint::Seconds,
        }),
        &[
            "--stigg-calls-per-minute=120",
            // One bucket per operation, so the spacing below is the quota's (the share is
            // held in the adapter's and the process tests).
            "--stigg-interactive-share=0",
            // Shorter than the queue of 8 items at 2 calls per second: without the batch's
            // allowance for its own turn in the queue, items would be refused or cut short.
            "--provisioning-deadline-ms=1000",
        ],
        CONCURRENCY,
    )
    .await;
    setup.exec(&seed_sql(ITEMS, 1, |_| "plan_starter_m")).await;

    let summary = setup.run(&options("paced", false, CONCURRENCY)).await;

    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    assert_eq!(summary.provisioned, ITEMS);
    let emulator = setup.stigg.emulator();
    assert_eq!(emulator.created_count(EntityKind::Customer), ITEMS);
    assert_eq!(emulator.created_count(EntityKind::Subscription), ITEMS);
    let statuses: Vec<u16> = setup.requests().iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|status| (200..300).contains(status)),
        "{statuses:?}"
    );
    // The client sent each operation's first 3 calls at once (its bank) and spaced the rest
    // by 60 s / (120 - 3), about 513 ms. The emulator stamps arrivals, which a busy machine
    // can bunch a little; unthrottled calls would be milliseconds apart.
    for path in ["/api/v1/customers", "/api/v1/subscriptions"] {
        let posts = setup.posts(path);
        assert_eq!(posts.len(), ITEMS);
        for pair in posts.windows(2).skip(2) {
            let gap = (pair[1].at - pair[0].at).to_std().unwrap_or(Duration::ZERO);
            assert!(gap >= Duration::from_millis(350), "{path}: {gap:?}");
        }
    }
    // Every item got its turn within its (batch) deadline: none was refused and retried.
    assert_eq!(
        setup
            .count("SELECT count(*) AS n FROM stigg_subscription_provisions WHERE attempts <> 1")
            .await,
        0
    );
}
