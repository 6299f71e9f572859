//! One Stigg budget for the whole deployment: three `reconcile` processes and a `serve` on one
//! PostgreSQL, against an emulator that enforces the quota with a one-minute sliding window
//! and answers 429 beyond it, as Stigg does.

use std::process::Output;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use onboarding_adapters_db::test_support::TestDatabase;
use serde_json::{Value, json};
use stigg_emulator::{EntityKind, LoggedRequest, RateLimit, RetryAfterHint};

use crate::Sandbox;

/// Calls a minute per mutation: the emulator's limit and the service's setting alike.
const QUOTA: usize = 300;
/// Subscriptions waiting for `reconcile`: a bit more than a minute of creates at the quota,
/// so the busiest window is a full one.
const BACKLOG: usize = 330;
/// Organizations provisioned through the API while the three runs go on.
const API_ORGS: usize = 80;

// Multi-threaded: blocking on the child processes must not stall the emulator served here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_reconciles_and_a_serve_share_the_quota_without_a_429() {
    let db = TestDatabase::postgres().await;
    seed(&db, "bk", BACKLOG).await;
    seed(&db, "api", API_ORGS).await;
    let sandbox = Sandbox::new().await;
    let stigg = sandbox.stigg.emulator();
    stigg.set_rate_limit(Some(quota()));
    let command = |args: &[&str]| {
        let mut command = sandbox.command(args);
        command
            .env("DATABASE_URL", db.url())
            .env("STIGG_CALLS_PER_MINUTE", QUOTA.to_string());
        command
    };
    let mut serve = command(&["serve"]).spawn().expect("the service starts");
    sandbox.wait_ready(&mut serve).await;

    let started = Instant::now();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let child = command(&["reconcile", "--json", "--concurrency", "4"])
                .spawn()
                .expect("reconcile starts");
            tokio::task::spawn_blocking(move || child.wait_with_output().expect("reconcile runs"))
        })
        .collect();

    // API requests throughout, at a tenth of the quota: each must be served.
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for i in 1..=API_ORGS {
        if runs.iter().all(|run| run.is_finished()) {
            break;
        }
        let asked = Instant::now();
        let answer = client
            .post(sandbox.url("/api/stigg/provision"))
            .header("x-request-id", format!("req-api-{i}"))
            .header("x-correlation-id", format!("corr-api-{i}"))
            .json(&json!({
                "orgId": format!("org_api{i}"),
                "stripeCustomerId": format!("cus_api{i}"),
                "stripeSubscriptionId": format!("sub_api{i}"),
                "planCode": "plan_starter_m",
            }))
            .send()
            .await
            .expect("the service answers");
        let status = answer.status().as_u16();
        let body = answer.text().await.unwrap_or_default();
        answers.push((status, asked.elapsed(), body));
        tokio::time::sleep(Duration::from_secs(2).saturating_sub(asked.elapsed())).await;
    }
    let mut provisioned = 0;
    for run in runs {
        let Output { status, stdout, .. } = run.await.expect("the run's task finishes");
        assert!(status.success(), "{}", String::from_utf8_lossy(&stdout));
        let summary: Value = serde_json::from_slice(&stdout).expect("a JSON summary");
        assert_eq!(summary["failed"], json!([]), "{summary}");
        provisioned += summary["provisioned"].as_u64().unwrap_or(0);
    }
    let elapsed = started.elapsed();
    crate::signal(&serve, "TERM");
    let _ =
        tokio::task::spawn_blocking(move || crate::wait_exit(&mut serve, Duration::from_secs(30)))
            .await;

    // Every subscription provisioned once: by one of the three runs, or by the API (the
    // organizations it was asked for are in the backlog too).
    assert!(
        answers.len() >= 20,
        "{} API requests during the runs",
        answers.len()
    );
    for (i, (status, took, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "API request {i} ({took:?}): {body}");
    }
    let slowest = answers.iter().map(|(_, took, _)| *took).max();
    eprintln!(
        "{} API requests during the runs, slowest {slowest:?}",
        answers.len()
    );
    let everything = (BACKLOG + API_ORGS) as u64;
    assert!(provisioned <= everything && provisioned >= BACKLOG as u64 - answers.len() as u64);
    assert_eq!(
        stigg.created_count(EntityKind::Subscription),
        BACKLOG + API_ORGS
    );
    let done = db
        .count("SELECT COUNT(*) AS n FROM stigg_subscription_provisions WHERE provisioned_at IS NOT NULL")
        .await
        .expect("the provisionings can be counted");
    assert_eq!(done, (BACKLOG + API_ORGS) as i64);
    let requests = stigg.requests();
    let limited = requests.iter().filter(|r| r.status == 429).count();
    assert_eq!(limited, 0, "429s from Stigg");
    for path in ["/api/v1/customers", "/api/v1/subscriptions"] {
        let mut at: Vec<DateTime<Utc>> = requests
            .iter()
            .filter(|r: &&LoggedRequest| r.method == "POST" && r.path == path)
            .map(|r| r.at)
            .collect();
        at.sort();
        let busiest = busiest_minute(&at);
        eprintln!(
            "{path}: {} calls, busiest minute {busiest} of {QUOTA}, over {elapsed:?}",
            at.len()
        );
        assert!(busiest <= QUOTA, "{path}: {busiest} calls in one minute");
        // The three runs together went at the quota, not at a third of it.
        assert!(
            busiest as f64 >= QUOTA as f64 * 0.9,
            "{path}: {busiest} calls in the busiest minute of {elapsed:?}"
        );
    }
}

/// `count` organizations, each with an active subscription not provisioned yet:
/// `org_{prefix}{i}`, `sub_{prefix}{i}`.
async fn seed(db: &TestDatabase, prefix: &str, count: usize) {
    db.execute(&format!(
        "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id)
         SELECT 'org_{prefix}' || i, 'Org ' || i, NULL, 'cus_{prefix}' || i
         FROM generate_series(1, {count}) AS i;
         INSERT INTO subscriptions
             (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
         SELECT 's_{prefix}' || i, 'org_{prefix}' || i, 'sub_{prefix}' || i,
                'plan_starter_m', 'active', NULL
         FROM generate_series(1, {count}) AS i;"
    ))
    .await
    .expect("the backlog is seeded");
}

/// Stigg's limits at [`QUOTA`], enforced with 429s.
fn quota() -> RateLimit {
    RateLimit {
        per_operation_per_minute: u32::try_from(QUOTA).unwrap_or(u32::MAX),
        per_customer_per_minute: 30,
        retry_after: RetryAfterHint::Seconds,
    }
}

/// Most calls in any closed one-minute window.
fn busiest_minute(at: &[DateTime<Utc>]) -> usize {
    let minute = chrono::Duration::seconds(60);
    let mut first = 0;
    let mut most = 0;
    for (last, t) in at.iter().enumerate() {
        // A closed minute: calls exactly 60 s apart count together.
        while *t - at[first] > minute {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most
}

/// A killed instance holds no budget: its booked slots are only time, which passes. A
/// `reconcile` killed with -9 mid-run, and another started at once, sends its first call as
/// soon as the dead run's booked slots have passed, and goes on at the quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_reconcile_leaves_no_budget_behind() {
    let db = TestDatabase::postgres().await;
    seed(&db, "bk", 200).await;
    let sandbox = Sandbox::new().await;
    let stigg = sandbox.stigg.emulator();
    stigg.set_rate_limit(Some(quota()));
    let reconcile = || {
        let mut command = sandbox.command(&["reconcile", "--json", "--concurrency", "8"]);
        command
            .env("DATABASE_URL", db.url())
            .env("STIGG_CALLS_PER_MINUTE", QUOTA.to_string());
        command.spawn().expect("reconcile starts")
    };
    let creates = || {
        stigg
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/api/v1/customers")
            .count()
    };
    let mut first = reconcile();
    while creates() < 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    crate::signal(&first, "KILL");
    let _ = tokio::task::spawn_blocking(move || first.wait()).await;
    let before = creates();

    let restarted = Instant::now();
    let mut second = reconcile();
    while creates() == before {
        assert!(
            restarted.elapsed() < Duration::from_secs(5),
            "no call within 5 s of the restart"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first_call = restarted.elapsed();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let in_ten_seconds = creates() - before;
    crate::signal(&second, "KILL");
    let _ = tokio::task::spawn_blocking(move || second.wait()).await;
    eprintln!("restarted: first call after {first_call:?}, {in_ten_seconds} creates in 10 s");
    // The dead run's booked slots pass: its 8 callers each held one, 8 × 250 ms at this
    // quota, then the new run's calls go. Leases the dead run held are left to lapse, not
    // waited for (that would be the ~20 s of their lifetime).
    assert!(first_call < Duration::from_secs(4), "{first_call:?}");
    // 10 s at 300 a minute is 50, less the interactive share the reserve keeps banked.
    assert!(in_ten_seconds >= 40, "{in_ten_seconds} creates in 10 s");
    assert_eq!(
        stigg.requests().iter().filter(|r| r.status == 429).count(),
        0
    );
}
