//! `onboarding reconcile`: provisions every subscription whose provisioning has not finished,
//! through the same use case as the API, with the same Stigg client (and so its per-operation
//! rate limit).
//!
//! Progress goes to standard error: a bar with count, rate and ETA when it is a terminal,
//! otherwise a log line every few seconds. The summary goes to standard output (text, or JSON
//! with `--json`). Ctrl-C stops taking new subscriptions and finishes the ones in flight; a
//! second Ctrl-C quits at once (unfinished leases then lapse by themselves).

mod progress;
mod report;
mod stop;

use std::io::{IsTerminal, Write};
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use onboarding_domain::use_cases::StopSignal;
use onboarding_domain::use_cases::reconcile_provisioning::{
    ReconcileObserver, ReconcileOptions, ReconcileSummary,
};
use tracing::instrument::WithSubscriber;

use progress::{PlainProgress, TerminalProgress};
pub use report::{Report, exit_code};
use stop::{Notice, listen_for_ctrl_c};

use crate::config::{Settings, StiggUse};
use crate::startup::{Services, StopFlag, batch_deadline};

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
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..=32)
    )]
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

/// One run on already-built services, without any terminal output.
pub async fn reconcile(
    services: &Services,
    options: &ReconcileOptions,
    observer: &dyn ReconcileObserver,
    stop: &dyn StopSignal,
) -> ReconcileSummary {
    services
        .reconcile_provisioning()
        .execute(options, observer, stop)
        .await
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
        // bury it, so unless --rust-log / RUST_LOG says otherwise only warnings are shown.
        let logs = progress.log_dispatch(settings.rust_log.as_deref());
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
