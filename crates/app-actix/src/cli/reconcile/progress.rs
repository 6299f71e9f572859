//! How a reconcile run shows its progress on standard error: a bar on a terminal, log lines
//! every few seconds otherwise, both with the rate of the last 20 s.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use onboarding_domain::use_cases::reconcile_provisioning::{
    ItemOutcome, ItemReport, ReconcileObserver,
};
use tracing_subscriber::EnvFilter;

/// How often a run without a terminal logs its progress.
const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// The progress bar on a terminal (standard error).
pub(super) struct TerminalProgress {
    pub(super) bar: ProgressBar,
    failed: AtomicU64,
    recent: Arc<RecentRate>,
}

impl TerminalProgress {
    pub(super) fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(spinner_style());
        bar.set_message("counting pending subscriptions");
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            bar,
            failed: AtomicU64::new(0),
            recent: Arc::default(),
        }
    }

    /// A subscriber for the run's logs that writes above the bar.
    /// `rust_log` is the setting (`--rust-log` or `RUST_LOG`), already checked at start-up.
    pub(super) fn log_dispatch(&self, rust_log: Option<&str>) -> tracing::Dispatch {
        let filter = rust_log
            .and_then(|f| EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| EnvFilter::new("warn"));
        let bar = self.bar.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || AboveBar {
                bar: bar.clone(),
                line: Vec::new(),
            })
            .finish();
        tracing::Dispatch::new(subscriber)
    }

    /// Takes the bar away: the summary that follows on standard output says it all, and a
    /// bar left behind would share its line with the summary's first one.
    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl ReconcileObserver for TerminalProgress {
    fn on_total(&self, total: Option<u64>) {
        if let Some(total) = total {
            self.bar.set_length(total);
            self.bar.set_style(bar_style(self.recent.clone()));
        }
        self.bar.set_message("");
    }

    fn on_item(&self, item: &ItemReport) {
        if let ItemOutcome::Failed { reason } = &item.outcome {
            let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
            self.bar
                .println(format!("failed  {}  {reason}", item.stripe_subscription_id));
            self.bar.set_message(format!("{failed} failed"));
        }
        self.bar.inc(1);
    }
}

fn bar_style(recent: Arc<RecentRate>) -> ProgressStyle {
    let for_eta = recent.clone();
    ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len}  {rate}  ETA {eta}  {msg}",
    )
    .map(|style| {
        style
            .with_key(
                "rate",
                move |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let _ = write!(out, "{:.1}/s", recent.per_sec(state.pos()));
                },
            )
            .with_key(
                "eta",
                move |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let left = state.len().unwrap_or(0).saturating_sub(state.pos());
                    let _ = match for_eta.eta(state.pos(), left) {
                        Some(eta) => write!(out, "{}s", eta.as_secs()),
                        None => write!(out, "?"),
                    };
                },
            )
            .progress_chars("=> ")
    })
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {elapsed_precise} {pos} handled  {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// The pace of the last [`RecentRate::WINDOW`]: a run starts fast (the rate limit's bank, no
/// queue yet) and then settles at the rate limit; an average since the start would promise
/// an ETA the run cannot keep.
#[derive(Default)]
struct RecentRate {
    samples: std::sync::Mutex<std::collections::VecDeque<(Instant, u64)>>,
}

impl RecentRate {
    const WINDOW: Duration = Duration::from_secs(20);

    /// Items per second over the window, seeing `pos` items handled now.
    fn per_sec(&self, pos: u64) -> f64 {
        self.per_sec_at(Instant::now(), pos)
    }

    fn per_sec_at(&self, now: Instant, pos: u64) -> f64 {
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        samples.push_back((now, pos));
        while samples.len() > 2
            && samples
                .get(1)
                .is_some_and(|(at, _)| now.duration_since(*at) >= Self::WINDOW)
        {
            samples.pop_front();
        }
        match samples.front() {
            Some((since, from)) if now.duration_since(*since) >= Duration::from_secs(1) => {
                pos.saturating_sub(*from) as f64 / now.duration_since(*since).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    fn eta(&self, pos: u64, left: u64) -> Option<Duration> {
        let rate = self.per_sec(pos);
        (rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate))
    }
}

/// One log line, written to standard error with the bar out of the way.
struct AboveBar {
    bar: ProgressBar,
    line: Vec<u8>,
}

impl Write for AboveBar {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for AboveBar {
    fn drop(&mut self) {
        // The formatter writes one event in pieces, then drops the writer: print it whole.
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.bar.suspend(|| {
                let _ = std::io::stderr().lock().write_all(&line);
            });
        }
    }
}

/// Progress without a terminal: counters, logged every few seconds.
pub(super) struct PlainProgress {
    /// `u64::MAX` until known.
    total: AtomicU64,
    handled: AtomicU64,
    failed: AtomicU64,
    recent: RecentRate,
}

impl PlainProgress {
    pub(super) fn new(started: Instant) -> Self {
        let recent = RecentRate::default();
        recent.per_sec_at(started, 0);
        Self {
            total: AtomicU64::new(u64::MAX),
            handled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            recent,
        }
    }

    pub(super) async fn log_periodically(self: Arc<Self>) {
        let mut every = tokio::time::interval(PROGRESS_LOG_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await; // the first tick is immediate
        loop {
            every.tick().await;
            self.log();
        }
    }

    fn log(&self) {
        let handled = self.handled.load(Ordering::Relaxed);
        let total = Some(self.total.load(Ordering::Relaxed)).filter(|t| *t != u64::MAX);
        let failed = self.failed.load(Ordering::Relaxed);
        let rate = self.recent.per_sec(handled);
        let eta_secs = total
            .filter(|_| rate > 0.0)
            .map(|total| (total.saturating_sub(handled) as f64 / rate).round() as u64);
        tracing::info!(
            handled,
            total,
            failed,
            rate_per_sec = (rate * 10.0).round() / 10.0,
            eta_secs,
            "reconcile progress: {handled}/{} handled, {rate:.1}/s, ETA {}",
            total.map_or_else(|| "?".to_owned(), |t| t.to_string()),
            eta_secs.map_or_else(|| "?".to_owned(), |s| format!("{s}s")),
        );
    }
}

impl ReconcileObserver for PlainProgress {
    fn on_total(&self, total: Option<u64>) {
        if let Some(total) = total {
            self.total.store(total, Ordering::Relaxed);
        }
    }

    fn on_item(&self, item: &ItemReport) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        if let ItemOutcome::Failed { reason } = &item.outcome {
            self.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                stripe_subscription_id = %item.stripe_subscription_id,
                org_id = item.org_id.as_deref(),
                reason = %reason,
                "reconcile: subscription not provisioned"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_follows_the_last_twenty_seconds_not_the_start() {
        let recent = RecentRate::default();
        let start = Instant::now();
        // A burst of 100 in the first second, then 1 a second for a minute.
        recent.per_sec_at(start, 0);
        recent.per_sec_at(start + Duration::from_secs(1), 100);
        let mut rate = 0.0;
        for s in 2..=60 {
            rate = recent.per_sec_at(start + Duration::from_secs(s), 100 + (s - 1));
        }
        assert!((0.9..=1.1).contains(&rate), "{rate}/s");
    }
}
