//! Scenario e, `onboarding reconcile` against the Stigg quota: pending subscriptions
//! provisioned through an emulator limited to the quota; the pace achieved per operation is
//! judged against it, with no 429.

use std::time::Duration;

use serde_json::json;

use super::emulator_log::{self, CUSTOMERS, RequestLog, SUBSCRIPTIONS};
use super::reconcile_run::{failed, summary_json};
use super::{Bench, MIB, say};
use crate::procs;
use crate::report::{self, Row};
use crate::wrk::round;

/// Target of the issue: the pace achieved against the quota.
pub(super) const TARGET_QUOTA: f64 = 0.95;

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
        let children_before = procs::children_cpu_ticks();
        let mut runs = [self.start_reconcile("reconcile", env, e)?];
        let limit = Duration::from_secs_f64(e as f64 / (f64::from(q) / 60.0) * 3.0 + 120.0);
        self.wait_reconciles(&mut runs, limit, "e")?;
        let [run] = runs;
        let wall = run.wall_s();
        let waited_ticks = procs::children_cpu_ticks().saturating_sub(children_before);
        let cpu_s = waited_ticks.max(run.cpu_ticks) as f64 / self.ticks;
        let peak_kib = run.peak_kib;
        let summary = run.summary()?;
        let log = RequestLog::read(&emulator)?;
        emulator.daemon.stop(Duration::from_secs(10));
        let too_many = log.too_many();
        // Achieved pace per operation: calls per minute between its first and last call.
        let customers = emulator_log::pace(&log.created_at(CUSTOMERS, |_| true));
        let subscriptions = emulator_log::pace(&log.created_at(SUBSCRIPTIONS, |_| true));
        let (customer_pace, subscription_pace) = (customers.per_minute, subscriptions.per_minute);
        let achieved = customer_pace.min(subscription_pace);
        let ratio = achieved / f64::from(q);
        let provisioned = summary["provisioned"].as_u64().unwrap_or(0);
        let failed = failed(&summary);
        self.report.details.insert(
            "e".into(),
            json!({
                "pendingBefore": pending_before,
                "summary": summary_json(&summary, run.status()),
                "wallSeconds": round(wall, 2),
                "emulatorRequestsByStatus": log.by_status(),
                "customersCreated": customers.calls,
                "subscriptionsCreated": subscriptions.calls,
                "customerCallsPerMinute": round(customer_pace, 1),
                "subscriptionCallsPerMinute": round(subscription_pace, 1),
                "customerGapMsP1P50P99": customers.gaps_ms.iter().map(|g| round(*g, 3)).collect::<Vec<_>>(),
                "subscriptionGapMsP1P50P99": subscriptions.gaps_ms.iter().map(|g| round(*g, 3)).collect::<Vec<_>>(),
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
                customers.gaps_ms[1],
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
