//! Scenario h, one Stigg budget shared on PostgreSQL: three `onboarding reconcile` runs
//! started at once over one backlog, and a `serve` answering API provisionings all along,
//! against one emulator limited to the quota. Together they should go at the quota (the
//! runs taking what the API requests leave), with no 429, each subscription provisioned
//! once, and every API request served.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::Utc;
use serde_json::{Value, json};

use super::emulator_log::{self, CUSTOMERS, Call, RequestLog, SUBSCRIPTIONS};
use super::reconcile_quota::TARGET_QUOTA;
use super::reconcile_run::{ReconcileRun, failed, summary_json};
use super::service::post;
use super::sync_events::{millis, quantile};
use super::{Bench, MIB, say};
use crate::pg::Postgres;
use crate::procs;
use crate::report::{self, Row};
use crate::wrk::round;

/// `reconcile` processes started at once.
const RUNS: u64 = 3;
/// API requests per second during the run.
const INTERACTIVE_PER_SECOND: u64 = 5;

/// The backlog as `reconcile` lists it (provisionable, not provisioned, with its
/// organization), ranked in its order; `fresh`: nothing of it provisioned yet, so it costs
/// one call of each operation.
const PENDING: &str = "WITH pending AS (SELECT s.stripe_subscription_id AS sub, \
     s.organization_id AS org, o.stripe_customer_id AS cus, s.plan_code AS plan, \
     row_number() OVER (ORDER BY s.stripe_subscription_id) AS rank, \
     p.stripe_subscription_id IS NULL AND c.organization_id IS NULL AS fresh \
     FROM subscriptions s JOIN organizations o ON o.id = s.organization_id \
     LEFT JOIN stigg_subscription_provisions p ON p.stripe_subscription_id = s.stripe_subscription_id \
     LEFT JOIN stigg_customer_provisions c ON c.organization_id = s.organization_id \
     WHERE p.provisioned_at IS NULL AND s.status IN ('trialing', 'active', 'past_due')) ";

const PROVISIONED: &str =
    "SELECT count(*) FROM stigg_subscription_provisions WHERE provisioned_at IS NOT NULL";

/// The subscriptions of the run: the backlog the reconciles share, and those the API
/// requests provision.
struct Backlog {
    first: String,
    last: String,
    /// Of the backlog, how many have nothing provisioned yet.
    fresh: u64,
    /// Bodies of the API requests, one subscription each.
    api_bodies: Vec<String>,
}

impl Backlog {
    /// Each run takes the first `size` pending subscriptions in key order, skipping those
    /// finished meanwhile by another: together they handle at most RUNS × `size`, all among
    /// the first RUNS × `size` pending. The API requests (`api` at most) go to fresh ones after
    /// those, which no run reaches.
    fn pick(pg: &Postgres, size: u64, api: u64) -> anyhow::Result<Self> {
        let backlog = rows(&pg.query(&format!(
            "{PENDING}SELECT min(sub), max(sub), count(*), count(*) FILTER (WHERE fresh) \
             FROM pending WHERE rank <= {size}"
        ))?);
        let [first, last, listed, fresh] = backlog.first().map_or([""; 4], |r| {
            std::array::from_fn(|i| r.get(i).map_or("", String::as_str))
        });
        if listed != size.to_string() {
            bail!("scenario h needs {size} pending subscriptions, found {listed:?}");
        }
        let api_bodies = rows(&pg.query(&format!(
            "{PENDING}SELECT org, cus, sub, plan FROM pending WHERE rank > {} AND fresh \
             AND cus IS NOT NULL ORDER BY sub LIMIT {api}",
            RUNS * size
        ))?)
        .iter()
        .filter_map(|r| match r.as_slice() {
            [org, cus, sub, plan] => Some(
                json!({"orgId": org, "stripeCustomerId": cus, "stripeSubscriptionId": sub, "planCode": plan})
                    .to_string(),
            ),
            _ => None,
        })
        .collect();
        Ok(Self {
            first: first.to_owned(),
            last: last.to_owned(),
            fresh: fresh.parse().unwrap_or(0),
            api_bodies,
        })
    }
}

/// One API request: its status (none: no answer) and how long it took.
struct Answer {
    status: Option<u16>,
    ms: f64,
}

impl Bench {
    pub(super) fn shared_budget(&mut self) -> anyhow::Result<()> {
        let scenario_started = Instant::now();
        let q = self.config.quota_per_minute;
        let b = self.config.shared_reconcile;
        let expected_s = b as f64 / (f64::from(q) / 60.0);
        say(&format!(
            "scenario h: {RUNS} reconciles of one {b}-subscription backlog and API requests at {INTERACTIVE_PER_SECOND}/s, one budget of {q}/min (about {expected_s:.0} s)"
        ));
        let limit = Duration::from_secs_f64(expected_s * 3.0 + 120.0);
        let emulator = self.start_emulator("emulator-h", Some(q))?;
        let pg = self.pg()?;
        pg.checkpoint()?;
        let backlog = Backlog::pick(pg, b, INTERACTIVE_PER_SECOND * limit.as_secs())?;
        if (backlog.api_bodies.len() as f64) < INTERACTIVE_PER_SECOND as f64 * expected_s * 2.0 {
            bail!(
                "scenario h found only {} fresh pending subscriptions beyond the runs' reach for its API requests: raise BENCH_ORGS",
                backlog.api_bodies.len()
            );
        }
        let provisioned_before = pg.count(PROVISIONED)?;
        let env = self.service_env(&pg.url, emulator.addr, q, None);
        let service = self.start_service("service-h", emulator.addr, q)?;
        let children_before = procs::children_cpu_ticks();
        let mut runs = (1..=RUNS)
            .map(|i| self.start_reconcile(&format!("reconcile-h{i}"), env.clone(), b))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let done = AtomicBool::new(false);
        let (waited, answers) = std::thread::scope(|s| {
            let sender = s.spawn(|| send_steadily(service.addr, &backlog.api_bodies, &done));
            let waited = self.wait_reconciles(&mut runs, limit, "h");
            done.store(true, Ordering::Relaxed);
            (waited, sender.join())
        });
        waited?;
        let answers = answers.map_err(|_| anyhow::anyhow!("the API request thread panicked"))?;
        let cpu_s = procs::children_cpu_ticks().saturating_sub(children_before) as f64 / self.ticks;
        let service_peak_kib = service.stats().map_or(0, |s| s.peak_rss_kib);
        service.daemon.stop(Duration::from_secs(15));
        let log = RequestLog::read(&emulator)?;
        emulator.daemon.stop(Duration::from_secs(10));
        let pg = self.pg()?;
        let provisioned_in_all = pg.count(PROVISIONED)?.saturating_sub(provisioned_before);
        let backlog_left = pg.count(&format!(
            "{PENDING}SELECT count(*) FROM pending WHERE sub >= '{}' AND sub <= '{}'",
            backlog.first, backlog.last
        ))?;

        // The pace while all three ran, every caller counted: they share one quota.
        let from = runs
            .iter()
            .map(|r| r.started_at)
            .max()
            .unwrap_or_else(Utc::now);
        let to = runs
            .iter()
            .filter_map(|r| r.exit.map(|e| e.2))
            .min()
            .unwrap_or(from);
        let during = |c: &Call| c.at.is_some_and(|t| t >= from && t <= to);
        let customers = emulator_log::pace(&log.created_at(CUSTOMERS, during));
        let subscriptions = emulator_log::pace(&log.created_at(SUBSCRIPTIONS, during));
        let whole_customers = emulator_log::pace(&log.created_at(CUSTOMERS, |_| true));
        let whole_subscriptions = emulator_log::pace(&log.created_at(SUBSCRIPTIONS, |_| true));
        let ratio = customers.per_minute.min(subscriptions.per_minute) / f64::from(q);
        let too_many = log.too_many();
        let by_api = |path: &str| {
            log.calls
                .iter()
                .filter(|c| c.created(path) && !c.correlation_id.starts_with("reconcile-"))
                .count()
        };
        let summaries = runs
            .iter()
            .map(ReconcileRun::summary)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let provisioned: u64 = summaries
            .iter()
            .map(|s| s["provisioned"].as_u64().unwrap_or(0))
            .sum();
        // A run that finds items finished by another before it reads them goes on past the
        // backlog's end: the runs then provision a few subscriptions beyond it.
        let beyond = provisioned.saturating_sub(b - backlog_left);
        let failed: u64 = summaries.iter().map(failed).sum();
        let all_exited_0 = runs.iter().all(|r| r.status().is_some_and(|s| s.success()));
        let mut ms: Vec<f64> = answers.iter().map(|a| a.ms).collect();
        ms.sort_by(f64::total_cmp);
        let (p50, p99, max) = (quantile(&ms, 0.5), quantile(&ms, 0.99), ms.last().copied());
        let non_200 = answers.iter().filter(|a| a.status != Some(200)).count() as u64;
        let api_ok = answers.len() as u64 - non_200;
        let peak_kib = runs.iter().map(|r| r.peak_kib).max().unwrap_or(0);
        let wall = runs.iter().map(ReconcileRun::wall_s).fold(0.0, f64::max);
        let window_s = millis(to, from) / 1e3;
        if wall < 60.0 {
            self.report.notes.push(format!(
                "Scenario h lasted {wall:.0} s, less than a minute: the emulator's one-minute window never filled, so its 0 × 429 does not test the limit; a backlog above {q} (BENCH_SHARED_RECONCILE) would."
            ));
        }
        let pace_json = |p: &emulator_log::Pace| {
            json!({
                "calls": p.calls,
                "perMinute": round(p.per_minute, 1),
                "ofQuota": round(p.per_minute / f64::from(q), 3),
                "busiestMinute": p.busiest_minute,
                "gapMsP1P50P99": p.gaps_ms.iter().map(|g| round(*g, 3)).collect::<Vec<_>>(),
            })
        };
        self.report.details.insert(
            "h".into(),
            json!({
                "backlog": { "size": b, "first": backlog.first, "last": backlog.last, "fresh": backlog.fresh, "leftPending": backlog_left },
                "runs": runs.iter().zip(&summaries).map(|(r, s)| json!({
                    "name": r.name,
                    "summary": summary_json(s, r.status()),
                    "wallSeconds": round(r.wall_s(), 2),
                    "peakRssMiB": round(r.peak_kib as f64 / MIB, 1),
                })).collect::<Vec<_>>(),
                "provisionedByRuns": provisioned,
                "provisionedBeyondBacklog": beyond,
                "provisionedInAll": provisioned_in_all,
                "whileAllRan": {
                    "seconds": round(window_s, 2),
                    "customers": pace_json(&customers),
                    "subscriptions": pace_json(&subscriptions),
                },
                "wholeRun": { "customers": pace_json(&whole_customers), "subscriptions": pace_json(&whole_subscriptions) },
                "createdByApi": { "customers": by_api(CUSTOMERS), "subscriptions": by_api(SUBSCRIPTIONS) },
                "createdTwice": { "customers": created_twice(&log, CUSTOMERS), "subscriptions": created_twice(&log, SUBSCRIPTIONS) },
                "emulatorRequestsByStatus": log.by_status(),
                "status429": too_many,
                "api": {
                    "requests": answers.len(),
                    "perSecond": INTERACTIVE_PER_SECOND,
                    "non200": non_200,
                    "statuses": statuses(&answers),
                    "p50Ms": round(p50, 2), "p99Ms": round(p99, 2), "maxMs": max.map(|m| round(m, 2)),
                    "ranOutOfSubscriptions": answers.len() == backlog.api_bodies.len(),
                },
                "servicePeakRssMiB": round(service_peak_kib as f64 / MIB, 1),
                "runsCpuSeconds": round(cpu_s, 2),
                "wallSeconds": round(wall, 2),
                "scenarioSeconds": round(scenario_started.elapsed().as_secs_f64(), 1),
            }),
        );
        self.report.rows.push(Row {
            id: "h".into(),
            title: format!("{RUNS} reconciles of one {b}-subscription backlog, with API requests"),
            concurrency: Some(self.config.reconcile_concurrency),
            p50_ms: Some(p50),
            p99_ms: Some(p99),
            errors: Some(failed + too_many + non_200),
            peak_rss_mib: Some(peak_kib as f64 / MIB),
            cpu_s: Some(cpu_s),
            limit: format!(
                "quota {} calls/min per operation shared by {RUNS} runs and a serve on one PostgreSQL; while all {RUNS} ran: {} (customers) and {} (subscriptions), busiest minute {} and {} calls; the runs provisioned {provisioned} ({} of the backlog's {b}, {beyond} beyond it) in {wall:.0} s; {} API requests at {INTERACTIVE_PER_SECOND}/s, {api_ok} × 200, p50 {p50:.1} ms, p99 {p99:.1} ms, max {:.1} ms; {too_many} × 429",
                report::rate(f64::from(q)),
                report::rate(customers.per_minute),
                report::rate(subscriptions.per_minute),
                whole_customers.busiest_minute,
                whole_subscriptions.busiest_minute,
                b - backlog_left,
                answers.len(),
                max.unwrap_or(0.0),
            ),
            target: format!("≥ {TARGET_QUOTA:.2} × quota, 0 × 429"),
            ratio: format!("{ratio:.3}"),
            pass: Some(
                ratio >= TARGET_QUOTA
                    && too_many == 0
                    && failed == 0
                    && non_200 == 0
                    && all_exited_0,
            ),
            ..Row::default()
        });
        Ok(())
    }
}

/// Sends one body after another at INTERACTIVE_PER_SECOND (a late answer delays the next
/// one, never bunches them) until `done`.
fn send_steadily(addr: SocketAddr, bodies: &[String], done: &AtomicBool) -> Vec<Answer> {
    let started = Instant::now();
    let every = Duration::from_secs(1) / INTERACTIVE_PER_SECOND as u32;
    let mut answers = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let due = started + every * i as u32;
        while !done.load(Ordering::Relaxed) && Instant::now() < due {
            std::thread::sleep((due - Instant::now()).min(Duration::from_millis(20)));
        }
        if done.load(Ordering::Relaxed) {
            break;
        }
        let asked = Instant::now();
        let status = post(addr, body).ok().map(|r| r.status);
        answers.push(Answer {
            status,
            ms: asked.elapsed().as_secs_f64() * 1e3,
        });
    }
    answers
}

/// API answers counted by status (`none`: no answer).
fn statuses(answers: &[Answer]) -> Value {
    let mut counts = serde_json::Map::new();
    for a in answers {
        let key = a
            .status
            .map_or_else(|| "none".to_owned(), |s| s.to_string());
        let n = counts.get(&key).and_then(Value::as_u64).unwrap_or(0);
        counts.insert(key, json!(n + 1));
    }
    Value::Object(counts)
}

/// Accepted creations beyond the first of the same Stripe id (should be none).
fn created_twice(log: &RequestLog, path: &str) -> usize {
    let mut ids: Vec<&str> = log
        .calls
        .iter()
        .filter(|c| c.created(path))
        .map(|c| c.billing_id.as_str())
        .collect();
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    all - ids.len()
}

/// psql's rows (separated by \x1e) of fields (separated by \x1f).
fn rows(raw: &str) -> Vec<Vec<String>> {
    raw.split('\u{1e}')
        .map(|row| row.trim_matches(|c: char| c == '\n' || c == '\r'))
        .filter(|row| !row.is_empty())
        .map(|row| row.split('\u{1f}').map(str::to_owned).collect())
        .collect()
}
