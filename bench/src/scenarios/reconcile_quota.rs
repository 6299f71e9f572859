//! Scenario e, `onboarding reconcile` against the Stigg quota: pending subscriptions
//! provisioned through an emulator limited to the quota; the pace achieved per operation is
//! judged against it, with no 429.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{Bench, MIB, say};
use crate::http;
use crate::procs::{self, ProcStats};
use crate::report::{self, Row};
use crate::wrk::round;

/// Target of the issue: the pace achieved against the quota.
const TARGET_QUOTA: f64 = 0.95;

impl Bench {
    pub(super) fn reconcile_quota(&mut self) -> anyhow::Result<()> {
        let q = self.config.quota_per_minute;
        let e = self.config.reconcile;
        say(&format!(
            "scenario e: reconcile {e} subscriptions against the emulator limited to {q}/min (about {:.0} s)",
            e as f64 / (f64::from(q) / 60.0)
        ));
        let emulator = self.start_emulator("emulator-limited", Some(q))?;
        let pg = self.pg()?;
        pg.checkpoint()?;
        let pending_before = pg.count(
            "SELECT count(*) FROM subscriptions s LEFT JOIN stigg_subscription_provisions p \
             ON p.stripe_subscription_id = s.stripe_subscription_id WHERE p.provisioned_at IS NULL",
        )?;
        let env = self.service_env(&pg.url, emulator.addr, q, None);
        let stdout_path = self.work.join("reconcile-stdout.json");
        let stderr_path = self.work.join("reconcile.log");
        let children_before = procs::children_cpu_ticks();
        let started = Instant::now();
        let mut child = Command::new(self.config.bin_dir.join("onboarding"))
            .args(["reconcile", "--json", "--limit"])
            .arg(e.to_string())
            .arg("--concurrency")
            .arg(self.config.reconcile_concurrency.to_string())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .current_dir(&self.work)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path)?)
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()
            .context("cannot start onboarding reconcile")?;
        let limit = Duration::from_secs_f64(e as f64 / (f64::from(q) / 60.0) * 3.0 + 120.0);
        let mut peak_kib = 0;
        let mut cpu_ticks = 0;
        let mut polls: u64 = 0;
        let status = loop {
            polls += 1;
            if polls % 50 == 1 {
                self.watch("e");
            }
            if let Ok(stats) = ProcStats::read(child.id())
                && stats.state != 'Z'
            {
                peak_kib = peak_kib.max(stats.peak_rss_kib);
                cpu_ticks = cpu_ticks.max(stats.cpu_ticks);
            }
            match child.try_wait()? {
                Some(status) => break status,
                None if started.elapsed() > limit => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("reconcile did not finish within {} s", limit.as_secs());
                }
                None => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let wall = started.elapsed().as_secs_f64();
        let waited_ticks = procs::children_cpu_ticks().saturating_sub(children_before);
        let cpu_s = waited_ticks.max(cpu_ticks) as f64 / self.ticks;
        let summary: Value = serde_json::from_str(std::fs::read_to_string(&stdout_path)?.trim())
            .with_context(|| {
                format!(
                    "reconcile printed no JSON summary ({status}): {}",
                    procs::tail(&stderr_path, 10)
                )
            })?;
        let log = http::get(
            emulator.addr,
            "/_emulator/requests",
            Duration::from_secs(60),
        )?;
        emulator.daemon.stop(Duration::from_secs(10));
        let requests: Vec<Value> =
            serde_json::from_slice(&log.body).context("bad emulator request log")?;
        let mut by_status: Vec<(String, u64)> = Vec::new();
        let mut times: Vec<(String, chrono::DateTime<chrono::Utc>)> = Vec::new();
        for r in &requests {
            let key = format!(
                "{} {} {}",
                r["method"].as_str().unwrap_or("?"),
                r["path"].as_str().unwrap_or("?"),
                r["status"]
            );
            match by_status.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => by_status.push((key, 1)),
            }
            let ok = r["status"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s));
            if ok
                && r["method"] == "POST"
                && let Some(at) = r["at"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            {
                times.push((
                    r["path"].as_str().unwrap_or("").to_owned(),
                    at.with_timezone(&chrono::Utc),
                ));
            }
        }
        let too_many = requests.iter().filter(|r| r["status"] == 429).count() as u64;
        // Achieved pace per operation: calls per minute between its first and last call.
        let pace = |path: &str| -> (u64, f64, Vec<f64>) {
            let mut ts: Vec<_> = times
                .iter()
                .filter(|(p, _)| p == path)
                .map(|(_, t)| *t)
                .collect();
            ts.sort();
            let mut gaps: Vec<f64> = ts
                .windows(2)
                .map(|w| (w[1] - w[0]).num_microseconds().unwrap_or(0) as f64 / 1e3)
                .collect();
            gaps.sort_by(f64::total_cmp);
            let pick = |q: f64| {
                let i = ((gaps.len() as f64 - 1.0).max(0.0) * q).round() as usize;
                gaps.get(i).copied().unwrap_or(0.0)
            };
            let gap_summary = vec![pick(0.01), pick(0.5), pick(0.99)];
            match (ts.first(), ts.last()) {
                (Some(first), Some(last)) if ts.len() > 1 => {
                    let span = (*last - *first).num_microseconds().unwrap_or(0) as f64 / 1e6;
                    (
                        ts.len() as u64,
                        (ts.len() - 1) as f64 / span * 60.0,
                        gap_summary,
                    )
                }
                _ => (ts.len() as u64, 0.0, gap_summary),
            }
        };
        let (customers, customer_pace, customer_gaps) = pace("/api/v1/customers");
        let (subscriptions, subscription_pace, subscription_gaps) = pace("/api/v1/subscriptions");
        let achieved = customer_pace.min(subscription_pace);
        let ratio = achieved / f64::from(q);
        let provisioned = summary["provisioned"].as_u64().unwrap_or(0);
        let failed = summary["failed"].as_array().map_or(0, Vec::len) as u64;
        self.report.details.insert(
            "e".into(),
            json!({
                "pendingBefore": pending_before,
                "summary": {
                    "total": summary["total"], "handled": summary["handled"], "provisioned": provisioned,
                    "alreadyProvisioned": summary["alreadyProvisioned"], "failed": failed,
                    "durationMs": summary["durationMs"], "exitStatus": status.code(),
                },
                "wallSeconds": round(wall, 2),
                "emulatorRequestsByStatus": Value::Object(by_status.iter().map(|(k, n)| (k.clone(), json!(n))).collect()),
                "customersCreated": customers,
                "subscriptionsCreated": subscriptions,
                "customerCallsPerMinute": round(customer_pace, 1),
                "subscriptionCallsPerMinute": round(subscription_pace, 1),
                "customerGapMsP1P50P99": customer_gaps.iter().map(|g| round(*g, 3)).collect::<Vec<_>>(),
                "subscriptionGapMsP1P50P99": subscription_gaps.iter().map(|g| round(*g, 3)).collect::<Vec<_>>(),
                "status429": too_many,
                "peakRssMiB": round(peak_kib as f64 / MIB, 1),
                "cpuSeconds": round(cpu_s, 2),
            }),
        );
        self.report.rows.push(Row {
            id: "e".into(),
            title: format!("reconcile of {e} subscriptions"),
            concurrency: Some(self.config.reconcile_concurrency),
            rps: None,
            errors: Some(failed + too_many),
            peak_rss_mib: Some(peak_kib as f64 / MIB),
            cpu_s: Some(cpu_s),
            limit: format!(
                "quota {} calls/min per operation; achieved {} (customers) and {} (subscriptions); {provisioned} provisioned in {wall:.0} s ({:.0}/s); median gap between customer calls {:.2} ms (quota spacing {:.2} ms); {too_many} × 429",
                report::rate(f64::from(q)),
                report::rate(customer_pace),
                report::rate(subscription_pace),
                provisioned as f64 / wall,
                customer_gaps.get(1).copied().unwrap_or(0.0),
                60_000.0 / f64::from(q),
            ),
            target: format!("≥ {TARGET_QUOTA:.2} × quota, 0 × 429"),
            ratio: format!("{ratio:.3}"),
            pass: Some(ratio >= TARGET_QUOTA && too_many == 0 && failed == 0),
            ..Row::default()
        });
        Ok(())
    }
}
