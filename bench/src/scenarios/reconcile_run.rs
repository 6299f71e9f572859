//! `onboarding reconcile --json` as scenarios e and h run it: started with the service's
//! settings, watched (peak memory, CPU) until it exits, then its JSON summary.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Bench;
use crate::procs::{self, ProcStats};

pub(super) struct ReconcileRun {
    pub(super) name: String,
    child: Child,
    stdout: PathBuf,
    log: PathBuf,
    pub(super) started: Instant,
    pub(super) started_at: DateTime<Utc>,
    /// Highest VmHWM and CPU seen while it ran.
    pub(super) peak_kib: u64,
    pub(super) cpu_ticks: u64,
    /// How it ended, and when.
    pub(super) exit: Option<(ExitStatus, Instant, DateTime<Utc>)>,
}

impl Bench {
    /// Starts `onboarding reconcile --json --limit <limit>` at the configured concurrency;
    /// its summary goes to `<name>-stdout.json`, its log to `<name>.log`.
    pub(super) fn start_reconcile(
        &self,
        name: &str,
        env: Vec<(String, String)>,
        limit: u64,
    ) -> anyhow::Result<ReconcileRun> {
        let stdout = self.work.join(format!("{name}-stdout.json"));
        let log = self.work.join(format!("{name}.log"));
        let child = Command::new(self.config.bin_dir.join("onboarding"))
            .args(["reconcile", "--json", "--limit"])
            .arg(limit.to_string())
            .arg("--concurrency")
            .arg(self.config.reconcile_concurrency.to_string())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .current_dir(&self.work)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout)?)
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start onboarding reconcile ({name})"))?;
        Ok(ReconcileRun {
            name: name.to_owned(),
            child,
            stdout,
            log,
            started: Instant::now(),
            started_at: Utc::now(),
            peak_kib: 0,
            cpu_ticks: 0,
            exit: None,
        })
    }

    /// Polls `runs` every 100 ms until each has exited (watching the machine for scenario
    /// `scenario`); kills them all past `limit`.
    pub(super) fn wait_reconciles(
        &mut self,
        runs: &mut [ReconcileRun],
        limit: Duration,
        scenario: &str,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut polls: u64 = 0;
        loop {
            polls += 1;
            if polls % 50 == 1 {
                self.watch(scenario);
            }
            let mut running = false;
            for run in runs.iter_mut() {
                running |= !run.poll()?;
            }
            if !running {
                return Ok(());
            }
            if started.elapsed() > limit {
                for run in runs.iter_mut() {
                    let _ = run.child.kill();
                    let _ = run.child.wait();
                }
                bail!("reconcile did not finish within {} s", limit.as_secs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl ReconcileRun {
    /// Reads its figures; true once it has exited.
    fn poll(&mut self) -> anyhow::Result<bool> {
        if self.exit.is_some() {
            return Ok(true);
        }
        if let Ok(stats) = ProcStats::read(self.child.id())
            && stats.state != 'Z'
        {
            self.peak_kib = self.peak_kib.max(stats.peak_rss_kib);
            self.cpu_ticks = self.cpu_ticks.max(stats.cpu_ticks);
        }
        if let Some(status) = self.child.try_wait()? {
            self.exit = Some((status, Instant::now(), Utc::now()));
        }
        Ok(self.exit.is_some())
    }

    pub(super) fn status(&self) -> Option<ExitStatus> {
        self.exit.map(|(status, _, _)| status)
    }

    /// Seconds from its start to its exit.
    pub(super) fn wall_s(&self) -> f64 {
        self.exit.map_or(0.0, |(_, at, _)| {
            at.duration_since(self.started).as_secs_f64()
        })
    }

    /// The JSON summary it printed.
    pub(super) fn summary(&self) -> anyhow::Result<Value> {
        serde_json::from_str(std::fs::read_to_string(&self.stdout)?.trim()).with_context(|| {
            format!(
                "{} printed no JSON summary ({:?}): {}",
                self.name,
                self.status(),
                procs::tail(&self.log, 10)
            )
        })
    }
}

/// What the report keeps of a summary: its counts and the exit status.
pub(super) fn summary_json(summary: &Value, status: Option<ExitStatus>) -> Value {
    json!({
        "total": summary["total"],
        "handled": summary["handled"],
        "provisioned": summary["provisioned"].as_u64().unwrap_or(0),
        "alreadyProvisioned": summary["alreadyProvisioned"],
        "heldElsewhere": summary["heldElsewhere"],
        "failed": failed(summary),
        "durationMs": summary["durationMs"],
        "exitStatus": status.and_then(|s| s.code()),
    })
}

/// Items the run reported as failed.
pub(super) fn failed(summary: &Value) -> u64 {
    summary["failed"].as_array().map_or(0, Vec::len) as u64
}
