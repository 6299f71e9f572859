//! `onboarding reconcile`: provisions every subscription whose provisioning has not finished,
//! through the same use case as the API, with the same Stigg client (and so its per-operation
//! rate limit).
//!
//! Progress goes to standard error: a bar with count, rate and ETA when it is a terminal,
//! otherwise a log line every few seconds. The summary goes to standard output (text, or JSON
//! with `--json`). Ctrl-C stops taking new subscriptions and finishes the ones in flight; a
//! second Ctrl-C quits at once (unfinished leases then lapse by themselves).

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use indicatif::ProgressBar;
use onboarding_domain::use_cases::reconcile_provisioning::{
    FailedItem, Halt, ReconcileObserver, ReconcileOptions, ReconcilePolicy, ReconcileProvisioning,
    ReconcileSummary, StopSignal,
};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::instrument::WithSubscriber;

mod progress;

use progress::{PlainProgress, TerminalProgress};

use crate::clock::SystemClock;
use crate::config::{Settings, StiggUse};
use crate::startup::Services;

/// Without a terminal, how often a progress line is logged.
/// Exit status after a stop by Ctrl-C (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Clone, clap::Args)]
pub struct ReconcileArgs {
    /// List what would be provisioned; call neither Stigg nor the provisioning records.
    #[arg(long)]
    pub dry_run: bool,
    /// Handle at most N subscriptions (in Stripe subscription id order).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Subscriptions provisioned at the same time. Stigg's pace is set by the rate limit
    /// (STIGG_CALLS_PER_MINUTE), not by this.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub concurrency: u16,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run against the bundled in-memory Stigg emulator (nothing reaches Stigg; for trying
    /// the command). Without it and without STIGG_API_KEY the command refuses to run, except
    /// for a dry run, which calls no Stigg.
    #[arg(long)]
    pub emulator: bool,
}

impl ReconcileArgs {
    /// The use case's options for a run named `run_id`.
    pub fn options(&self, run_id: &str) -> ReconcileOptions {
        ReconcileOptions {
            run_id: run_id.to_owned(),
            dry_run: self.dry_run,
            limit: self.limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            concurrency: NonZeroUsize::new(usize::from(self.concurrency))
                .unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// The provisioning deadline of a reconcile: the configured one, plus the longest turn the
/// batch itself can cause in the Stigg client's rate-limit queue (each of an item's two calls
/// may wait behind every other item in flight). Without it, at a low
/// `STIGG_CALLS_PER_MINUTE` or a high concurrency, the wait for a token would eat the time
/// meant for Stigg, and a call would start with too little of it left.
pub fn batch_deadline(settings: &Settings, concurrency: u16) -> Duration {
    let per_token = Duration::from_secs(60) / settings.stigg_calls_per_minute.max(1);
    settings.provisioning_deadline + per_token * 2 * u32::from(concurrency)
}

/// The use case on the services' database, catalog and provisioning (hence their Stigg
/// client and its rate limit).
pub fn use_case(services: &Services) -> ReconcileProvisioning {
    ReconcileProvisioning::new(
        Arc::new(services.db.clone()),
        services.catalog.clone(),
        services.provision.clone(),
        Arc::new(SystemClock),
        ReconcilePolicy::default(),
    )
}

/// One run on already-built services, without any terminal output.
pub async fn reconcile(
    services: &Services,
    options: &ReconcileOptions,
    observer: &dyn ReconcileObserver,
    stop: &dyn StopSignal,
) -> ReconcileSummary {
    use_case(services).execute(options, observer, stop).await
}

/// The command: builds the services, runs with progress and Ctrl-C handling, prints the
/// summary. Exits 0 when everything taken was provisioned (or planned), 1 when an item failed
/// or the backlog could not be read, 130 when stopped by Ctrl-C.
pub async fn run(settings: &Settings, args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let stigg_use = StiggUse::OneShot {
        command: "reconcile",
        // A dry run calls neither Stigg nor the provisioning records: it needs no Stigg.
        emulator: args.emulator || (args.dry_run && !settings.has_stigg_settings()),
    };
    let deadline = batch_deadline(settings, args.concurrency);
    let services = Services::build_with_deadline(settings, deadline, stigg_use, None).await?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let options = args.options(&run_id);
    let stop = StopFlag::default();
    let started = Instant::now();

    let summary = if std::io::stderr().is_terminal() {
        let progress = TerminalProgress::new();
        let listener = listen_for_ctrl_c(stop.clone(), Notice::Bar(progress.bar.clone()));
        // Log lines are printed above the bar instead of through it; per-item lines would
        // bury it, so unless RUST_LOG says otherwise only warnings are shown.
        let logs = progress.log_dispatch();
        let summary = reconcile(&services, &options, &progress, &stop)
            .with_subscriber(logs)
            .await;
        listener.abort();
        progress.finish();
        summary
    } else {
        let progress = Arc::new(PlainProgress::new(started));
        let listener = listen_for_ctrl_c(stop.clone(), Notice::Log);
        let ticker = tokio::spawn(Arc::clone(&progress).log_periodically());
        let summary = reconcile(&services, &options, progress.as_ref(), &stop).await;
        ticker.abort();
        listener.abort();
        summary
    };
    services.shutdown().await;

    let report = Report {
        run_id: &run_id,
        dry_run: args.dry_run,
        elapsed: started.elapsed(),
        summary: &summary,
    };
    let text = if args.json {
        report.to_json().to_string()
    } else {
        report.to_text()
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", text.trim_end())?;
    Ok(exit_code(&summary, args.dry_run))
}

/// 0 clean, 1 when something failed, 130 when stopped (and nothing failed).
pub fn exit_code(summary: &ReconcileSummary, dry_run: bool) -> ExitCode {
    // A dry run that ran reports data problems as its findings: they are not its failure.
    let failed = (!dry_run && !summary.failed.is_empty())
        || matches!(summary.halt, Some(Halt::StoreFailed(_)));
    if failed {
        ExitCode::FAILURE
    } else if summary.halt == Some(Halt::Stopped) || summary.interrupted > 0 {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    }
}

/// The stop request, set on Ctrl-C and awaited by items waiting for the rate limit.
#[derive(Clone)]
pub struct StopFlag(Arc<watch::Sender<bool>>);

impl Default for StopFlag {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }
}

impl StopFlag {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

#[async_trait]
impl StopSignal for StopFlag {
    fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    async fn stopped(&self) {
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = self.0.subscribe().wait_for(|stopped| *stopped).await;
    }
}

/// Where to say that a stop was heard.
enum Notice {
    Bar(ProgressBar),
    Log,
}

impl Notice {
    fn say(&self, message: &str) {
        match self {
            Self::Bar(bar) => bar.println(message),
            Self::Log => tracing::warn!("{message}"),
        }
    }
}

/// First Ctrl-C: stop taking subscriptions, finish those in flight. Second: quit at once.
fn listen_for_ctrl_c(stop: StopFlag, notice: Notice) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        stop.stop();
        notice.say(
            "Ctrl-C: finishing the Stigg calls in flight, then stopping \
             (press Ctrl-C again to quit at once)",
        );
        if tokio::signal::ctrl_c().await.is_ok() {
            notice.say("Ctrl-C again: quitting; unfinished subscriptions stay pending");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    })
}

/// A finished run, as printed.
pub struct Report<'a> {
    pub run_id: &'a str,
    pub dry_run: bool,
    pub elapsed: Duration,
    pub summary: &'a ReconcileSummary,
}

impl Report<'_> {
    /// Lines for people.
    pub fn to_text(&self) -> String {
        let s = self.summary;
        let mut out = String::new();
        let pending = s
            .pending
            .map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        // Say when the limit, not the backlog, decided how many were taken.
        let limited = match (s.pending, s.total) {
            (Some(pending), Some(total)) if total < pending => format!(" (limit {total})"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{} {}: {} of {pending} pending subscriptions handled{limited} in {:.1}s",
            if self.dry_run {
                "reconcile (dry run)"
            } else {
                "reconcile"
            },
            self.run_id,
            s.handled(),
            self.elapsed.as_secs_f64(),
        );
        if self.dry_run {
            let _ = writeln!(out, "  would provision      {:>6}", s.would_provision.len());
        } else {
            let _ = writeln!(out, "  provisioned          {:>6}", s.provisioned);
            let _ = writeln!(out, "  already provisioned  {:>6}", s.already_provisioned);
        }
        let _ = writeln!(out, "  failed               {:>6}", s.failed.len());
        if s.interrupted > 0 {
            let _ = writeln!(out, "  interrupted          {:>6}", s.interrupted);
        }
        if !s.skipped.is_empty() {
            // Not pending: Stripe grants no access for these statuses.
            let by_status: Vec<String> = s
                .skipped
                .iter()
                .map(|(status, n)| format!("{status} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "  skipped by status    {:>6}  ({})",
                s.skipped_count(),
                by_status.join(", ")
            );
        }
        match &s.halt {
            Some(Halt::Stopped) => {
                let _ = writeln!(
                    out,
                    "stopped by Ctrl-C: the rest stays pending; run the command again to resume"
                );
            }
            Some(Halt::StoreFailed(reason)) => {
                let _ = writeln!(
                    out,
                    "stopped: cannot read the pending subscriptions: {reason}"
                );
            }
            None => {}
        }
        if !s.would_provision.is_empty() {
            let _ = writeln!(out, "would provision:");
            for item in &s.would_provision {
                let _ = writeln!(
                    out,
                    "  {}  org {}  plan {}",
                    item.stripe_subscription_id, item.org_id, item.plan_code
                );
            }
        }
        if !s.failed.is_empty() {
            let _ = writeln!(out, "failed:");
            let mut failed: Vec<&FailedItem> = s.failed.iter().collect();
            failed.sort_by(|a, b| a.stripe_subscription_id.cmp(&b.stripe_subscription_id));
            for item in failed {
                let _ = writeln!(
                    out,
                    "  {}  org {}  {}",
                    item.stripe_subscription_id,
                    item.org_id.as_deref().unwrap_or("?"),
                    item.reason
                );
            }
        }
        out
    }

    /// One JSON object, for scripts (`--json`).
    pub fn to_json(&self) -> Value {
        let s = self.summary;
        let mut failed: Vec<&FailedItem> = s.failed.iter().collect();
        failed.sort_by(|a, b| a.stripe_subscription_id.cmp(&b.stripe_subscription_id));
        json!({
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "total": s.total,
            "pending": s.pending,
            "handled": s.handled(),
            "provisioned": s.provisioned,
            "alreadyProvisioned": s.already_provisioned,
            "wouldProvision": s.would_provision.iter().map(|item| json!({
                "stripeSubscriptionId": item.stripe_subscription_id,
                "orgId": item.org_id,
                "planCode": item.plan_code,
            })).collect::<Vec<_>>(),
            "failed": failed.iter().map(|item| json!({
                "stripeSubscriptionId": item.stripe_subscription_id,
                "orgId": item.org_id,
                "reason": item.reason,
            })).collect::<Vec<_>>(),
            "interrupted": s.interrupted,
            "skipped": s.skipped.iter().map(|(status, n)| (status.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "stopped": match &s.halt {
                None => Value::Null,
                Some(Halt::Stopped) => json!({ "reason": "interrupted" }),
                Some(Halt::StoreFailed(reason)) => json!({ "reason": "store", "message": reason }),
            },
            "durationMs": u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use onboarding_domain::use_cases::reconcile_provisioning::PlannedItem;

    use super::*;

    fn failed(id: &str, reason: &str) -> FailedItem {
        FailedItem {
            stripe_subscription_id: id.into(),
            org_id: Some("org_1".into()),
            reason: reason.into(),
        }
    }

    #[test]
    fn exit_status_says_failed_stopped_or_clean() {
        let clean = ReconcileSummary {
            provisioned: 3,
            ..ReconcileSummary::default()
        };
        assert_eq!(exit_code(&clean, false), ExitCode::SUCCESS);
        let with_failure = ReconcileSummary {
            failed: vec![failed("sub_A1", "x")],
            halt: Some(Halt::Stopped),
            ..clean.clone()
        };
        assert_eq!(exit_code(&with_failure, false), ExitCode::FAILURE);
        // A dry run reports data problems; it did its job.
        let dry_findings = ReconcileSummary {
            failed: vec![failed("sub_A1", "unknown plan code 'plan_gone'")],
            ..clean.clone()
        };
        assert_eq!(exit_code(&dry_findings, true), ExitCode::SUCCESS);
        assert_eq!(exit_code(&dry_findings, false), ExitCode::FAILURE);
        let store = ReconcileSummary {
            halt: Some(Halt::StoreFailed("down".into())),
            ..clean.clone()
        };
        assert_eq!(exit_code(&store, false), ExitCode::FAILURE);
        let stopped = ReconcileSummary {
            halt: Some(Halt::Stopped),
            ..clean.clone()
        };
        assert_eq!(exit_code(&stopped, false), ExitCode::from(EXIT_INTERRUPTED));
        let interrupted = ReconcileSummary {
            interrupted: 1,
            ..clean
        };
        assert_eq!(
            exit_code(&interrupted, false),
            ExitCode::from(EXIT_INTERRUPTED)
        );
    }

    #[test]
    fn text_summary_lists_counts_and_failures() {
        let summary = ReconcileSummary {
            total: Some(4),
            pending: Some(4),
            provisioned: 2,
            already_provisioned: 1,
            failed: vec![failed("sub_B2", "unknown plan code 'plan_gone'")],
            skipped: vec![("canceled".into(), 2), ("unpaid".into(), 1)],
            ..ReconcileSummary::default()
        };
        let report = Report {
            run_id: "r1",
            dry_run: false,
            elapsed: Duration::from_millis(1500),
            summary: &summary,
        };
        assert_eq!(
            report.to_text(),
            "reconcile r1: 4 of 4 pending subscriptions handled in 1.5s\n\
             \x20 provisioned               2\n\
             \x20 already provisioned       1\n\
             \x20 failed                    1\n\
             \x20 skipped by status         3  (canceled 2, unpaid 1)\n\
             failed:\n\
             \x20 sub_B2  org org_1  unknown plan code 'plan_gone'\n"
        );
        assert_eq!(
            report.to_json()["skipped"],
            serde_json::json!({"canceled": 2, "unpaid": 1})
        );
    }

    #[test]
    fn dry_run_and_stop_are_shown() {
        let summary = ReconcileSummary {
            total: None,
            would_provision: vec![PlannedItem {
                stripe_subscription_id: "sub_A1".into(),
                org_id: "org_1".into(),
                plan_code: "plan_starter_m".into(),
            }],
            halt: Some(Halt::Stopped),
            ..ReconcileSummary::default()
        };
        let report = Report {
            run_id: "r2",
            dry_run: true,
            elapsed: Duration::ZERO,
            summary: &summary,
        };
        let text = report.to_text();
        assert!(
            text.starts_with("reconcile (dry run) r2: 1 of unknown pending"),
            "{text}"
        );
        assert!(text.contains("  would provision           1\n"), "{text}");
        assert!(text.contains("stopped by Ctrl-C"), "{text}");
        assert!(
            text.contains("  sub_A1  org org_1  plan plan_starter_m\n"),
            "{text}"
        );
        let value = report.to_json();
        assert_eq!(value["dryRun"], true);
        assert_eq!(value["total"], Value::Null);
        assert_eq!(value["wouldProvision"][0]["planCode"], "plan_starter_m");
        assert_eq!(value["stopped"]["reason"], "interrupted");
        assert_eq!(value["handled"], 1);
    }

    #[test]
    fn the_deadline_grows_by_the_batchs_own_turn_in_the_rate_limit_queue() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "onboarding",
            "--stigg-calls-per-minute=250",
            "--provisioning-deadline-ms=15000",
            "reconcile",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        // 4 items, 2 calls each, one token every 240 ms.
        assert_eq!(
            batch_deadline(&cli.settings, 4),
            Duration::from_millis(15_000 + 1_920)
        );
        let slow = Settings {
            stigg_calls_per_minute: 60,
            ..cli.settings
        };
        assert_eq!(batch_deadline(&slow, 32), Duration::from_secs(15 + 64));
    }

    #[test]
    fn args_become_options() {
        let args = ReconcileArgs {
            dry_run: true,
            limit: Some(7),
            concurrency: 3,
            json: false,
            emulator: false,
        };
        let options = args.options("run-9");
        assert_eq!(options.run_id, "run-9");
        assert!(options.dry_run);
        assert_eq!(options.limit, Some(7));
        assert_eq!(options.concurrency.get(), 3);
    }

    #[tokio::test]
    async fn the_stop_flag_wakes_whoever_waits_for_it() {
        let stop = StopFlag::default();
        assert!(!stop.is_stopped());
        let waiter = {
            let stop = stop.clone();
            tokio::spawn(async move { stop.stopped().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        stop.stop();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap_or_else(|e| panic!("the waiter was not woken: {e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(stop.is_stopped());
        // Already stopped: resolves at once.
        tokio::time::timeout(Duration::from_secs(1), stop.stopped())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_limit_that_took_fewer_than_pending_is_said() {
        let summary = ReconcileSummary {
            total: Some(30),
            pending: Some(46),
            provisioned: 30,
            ..ReconcileSummary::default()
        };
        let report = Report {
            run_id: "r3",
            dry_run: false,
            elapsed: Duration::from_secs(2),
            summary: &summary,
        };
        assert!(
            report.to_text().starts_with(
                "reconcile r3: 30 of 46 pending subscriptions handled (limit 30) in 2.0s\n"
            ),
            "{}",
            report.to_text()
        );
        assert_eq!(report.to_json()["pending"], 46);
    }
}
