//! One measured wrk run against the service: warm-up, then the run with the service's CPU,
//! memory, answers by status and statements; and what else ran on the machine meanwhile.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::service::Service;
use super::{Bench, MIB};
use crate::pg::Statement;
use crate::procs;
use crate::wrk::{self, Figures};

/// What one measured wrk run against the service gave.
pub(super) struct Measured {
    pub(super) figures: Figures,
    pub(super) cpu_s: f64,
    pub(super) peak_rss_mib: f64,
    /// Share of the machine's CPUs busy during the measured run.
    pub(super) machine_busy: f64,
    /// Answers by status on the load's route during the measured run (the service's own
    /// counter).
    pub(super) statuses: Vec<(String, f64)>,
    pub(super) statements: Vec<Statement>,
}

impl Measured {
    fn unexpected(&self, expected: &str) -> u64 {
        self.statuses
            .iter()
            .filter(|(status, _)| status != expected)
            .map(|(_, n)| *n as u64)
            .sum()
    }

    pub(super) fn errors(&self, expected: &str) -> u64 {
        self.figures.socket_errors + self.unexpected(expected)
    }

    pub(super) fn statuses_json(&self) -> Value {
        Value::Object(
            self.statuses
                .iter()
                .map(|(s, n)| (s.clone(), json!(*n as u64)))
                .collect(),
        )
    }
}

impl Bench {
    /// Warm-up (unmeasured), then the measured run with CPU, memory, statuses and statements.
    pub(super) fn measure(
        &mut self,
        service: &Service,
        warmup: Option<wrk::Load>,
        load: wrk::Load,
        tag: &str,
    ) -> anyhow::Result<Measured> {
        if let Some(warmup) = warmup
            && warmup.duration_s > 0
        {
            wrk::run(
                &self.config.root,
                &warmup,
                &self.work.join(format!("wrk-{tag}-warmup.txt")),
            )?;
        }
        if let Some(pg) = &self.pg {
            pg.reset_statements()?;
        }
        let before = service.statuses(&load.path)?;
        let s0 = service.stats()?;
        self.watch(tag);
        let m0 = procs::MachineCpu::now();
        let profiler = self.start_profile(service.daemon.pid, load.duration_s, tag);
        let figures = wrk::run(
            &self.config.root,
            &load,
            &self.work.join(format!("wrk-{tag}.txt")),
        )?;
        let s1 = service.stats()?;
        self.watch(tag);
        if let Some(profiler) = profiler {
            self.finish_profile(profiler, tag);
        }
        let machine_busy = procs::MachineCpu::now().busy_percent_since(&m0);
        let statements = match &self.pg {
            Some(pg) => pg.statements()?,
            None => Vec::new(),
        };
        let after = service.statuses(&load.path)?;
        let statuses = after
            .iter()
            .map(|(status, n)| {
                let was = before
                    .iter()
                    .find(|(s, _)| s == status)
                    .map_or(0.0, |(_, n)| *n);
                (status.clone(), n - was)
            })
            .filter(|(_, n)| *n > 0.0)
            .collect();
        Ok(Measured {
            figures,
            cpu_s: (s1.cpu_ticks - s0.cpu_ticks) as f64 / self.ticks,
            peak_rss_mib: s1.peak_rss_kib as f64 / MIB,
            machine_busy,
            statuses,
            statements,
        })
    }

    /// Notes which disturbing programs (builds) run now, against the scenario.
    pub(super) fn watch(&mut self, scenario: &str) {
        let found = procs::disturbers();
        if found.is_empty() {
            return;
        }
        match self.disturbed.iter_mut().find(|(s, _)| s == scenario) {
            Some((_, names)) => {
                names.extend(found);
                names.sort();
                names.dedup();
            }
            None => self.disturbed.push((scenario.to_owned(), found)),
        }
    }

    /// With BENCH_PROFILE=1: `perf record` (software clock, flat) on the service during the
    /// measured run. It costs the service some throughput, so it is off for real figures.
    fn start_profile(&self, pid: u32, seconds: u32, tag: &str) -> Option<std::process::Child> {
        if !self.config.profile {
            return None;
        }
        Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "499", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(self.work.join(format!("perf-{tag}.data")))
            .args(["--", "sleep"])
            .arg(seconds.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    }

    fn finish_profile(&mut self, mut profiler: std::process::Child, tag: &str) {
        let _ = procs::wait_bounded(&mut profiler, Duration::from_secs(30));
        let data = self.work.join(format!("perf-{tag}.data"));
        let mut report = Command::new("perf");
        report
            .args([
                "report",
                "--stdio",
                "--no-children",
                "--percent-limit",
                "0.7",
            ])
            .args(["--sort", "dso,symbol", "-i"])
            .arg(&data);
        if let Ok(text) = procs::run_ok(&mut report, Duration::from_secs(120), "perf report") {
            let path = self.work.join(format!("perf-{tag}.txt"));
            // perf pads every line to a very wide column; keep what is readable.
            let text: String = text
                .lines()
                .map(|l| {
                    let l = l.trim_end().trim_end_matches(['-', ' ']);
                    format!("{}\n", l.chars().take(160).collect::<String>())
                })
                .collect();
            let _ = std::fs::write(&path, &text);
            self.report
                .notes
                .push(format!("Profile of scenario {tag}: {}", path.display()));
        }
    }
}
