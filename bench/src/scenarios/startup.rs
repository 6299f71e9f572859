//! Start-up: from spawning `onboarding serve` on a fresh SQLite file to its first 200 on
//! /readyz, a few times; the median is judged.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use super::service::{Emulator, UNLIMITED_CALLS_PER_MINUTE};
use super::{Bench, MIB, say};
use crate::http;
use crate::procs::{self, ProcStats};
use crate::report::Row;
use crate::wrk::round;

/// Target of the issue.
const TARGET_STARTUP_MS: f64 = 200.0;

impl Bench {
    /// Spawn → first 200 on /readyz, on a fresh SQLite file each time.
    pub(super) fn startup(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        say("start-up to ready on SQLite");
        let dir = self.work.join("startup");
        std::fs::create_dir_all(&dir)?;
        let mut times = Vec::new();
        let mut peak = 0.0_f64;
        for i in 0..self.config.startup_runs {
            let db = dir.join(format!("run-{i}.db"));
            let addr = SocketAddr::from(([127, 0, 0, 1], procs::free_port()?));
            let env = self.service_env(
                &format!("sqlite://{}", db.display()),
                emulator.addr,
                UNLIMITED_CALLS_PER_MINUTE,
                Some(addr),
            );
            let log = std::fs::File::create(dir.join(format!("run-{i}.log")))?;
            let started = Instant::now();
            let mut child = Command::new(self.config.bin_dir.join("onboarding"))
                .arg("serve")
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .envs(env)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("cannot start the service")?;
            let ready = loop {
                if let Ok(r) = http::get(addr, "/readyz", Duration::from_secs(2))
                    && r.status == 200
                {
                    break Some(started.elapsed());
                }
                if started.elapsed() > Duration::from_secs(15)
                    || matches!(child.try_wait(), Ok(Some(_)))
                {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            if let Ok(stats) = ProcStats::read(child.id()) {
                peak = peak.max(stats.peak_rss_kib as f64 / MIB);
            }
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            if procs::wait_bounded(&mut child, Duration::from_secs(15)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            let elapsed = ready.with_context(|| {
                format!(
                    "the service did not become ready on SQLite: {}",
                    procs::tail(&dir.join(format!("run-{i}.log")), 10)
                )
            })?;
            times.push(elapsed.as_secs_f64() * 1000.0);
        }
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        let min = sorted.first().copied().unwrap_or(f64::NAN);
        let max = sorted.last().copied().unwrap_or(f64::NAN);
        self.report.details.insert(
            "startup".into(),
            json!({ "runsMs": times.iter().map(|t| round(*t, 1)).collect::<Vec<_>>(), "medianMs": round(median, 1) }),
        );
        self.report.rows.push(Row {
            id: "start-up".into(),
            title: "to ready, SQLite, fresh file".into(),
            peak_rss_mib: Some(peak),
            limit: format!(
                "median of {} runs: {median:.0} ms (min {min:.0}, max {max:.0})",
                times.len()
            ),
            target: format!("≤ {TARGET_STARTUP_MS:.0} ms"),
            ratio: format!("{median:.0} ms"),
            pass: Some(median <= TARGET_STARTUP_MS),
            ..Row::default()
        });
        Ok(())
    }
}
