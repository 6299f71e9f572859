//! The run: set-up, the scenarios with their limits (a module each, named for what it
//! measures), and the reports.

mod emulator_log;
mod first_time_provisioning;
mod lookup_ceiling;
mod measure;
mod pgbench_scripts;
mod reconcile_quota;
mod reconcile_run;
mod rejected_requests;
mod replays;
mod service;
mod shared_budget;
mod sql_capture;
mod startup;
mod statements;
mod sync_events;
mod sync_lag;
mod unknown_organizations;
mod webhook_intake;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::config::Config;
use crate::machine::Machine;
use crate::pg::Postgres;
use crate::pgbench;
use crate::procs;
use crate::report::{self, Report, Row};
use crate::wrk::{self, round};
use service::Emulator;

const MIB: f64 = 1024.0;
/// Target of the issue.
const TARGET_RSS_MIB: f64 = 64.0;

/// A scenario run against the shared, unlimited emulator.
type Scenario = fn(&mut Bench, &Emulator) -> anyhow::Result<()>;

/// Those scenarios by their `BENCH_SCENARIOS` name, in the order they run.
const WITH_SHARED_EMULATOR: [(&str, Scenario); 6] = [
    ("a", Bench::rejected_requests),
    ("b", Bench::unknown_organizations),
    ("c", Bench::replays),
    ("d", Bench::first_time_provisioning),
    ("f", Bench::webhook_intake),
    ("g", Bench::sync_lag),
];

fn say(message: &str) {
    eprintln!("bench: {message}");
}

struct Bench {
    config: Config,
    /// Logs, scripts and databases of this run.
    work: PathBuf,
    ticks: f64,
    plans: Vec<String>,
    pg: Option<Postgres>,
    report: Report,
    /// The service's 400 answer to the (a) request, for the bare handler.
    bad_request_answer: Option<String>,
    /// Scenario → builds and the like seen running during its measured runs.
    disturbed: Vec<(String, Vec<String>)>,
}

pub fn run() -> anyhow::Result<String> {
    let started = Instant::now();
    let config = Config::from_env()?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let work = config.out_dir.join(&stamp);
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let mut machine = Machine::describe(&config.root);
    // How busy the machine is before anything starts (the load average would still show
    // the release build that bench/run.sh has just done).
    let idle_check = procs::MachineCpu::now();
    std::thread::sleep(Duration::from_secs(3));
    machine.busy_before = procs::MachineCpu::now().busy_percent_since(&idle_check);
    if machine.busy_before > 15.0 {
        say(&format!(
            "warning: the machine was {:.0} % busy before the start; other work skews the figures",
            machine.busy_before
        ));
    }
    let stripe = config.runs("f") || config.runs("g");
    let binaries = ["onboarding", "stigg-emulator", "bare-handler"]
        .into_iter()
        .chain(stripe.then_some("stripe-emulator"));
    for binary in binaries {
        if !config.bin_dir.join(binary).is_file() {
            bail!(
                "{} is missing: build first (bench/run.sh does: cargo build --release -p onboarding-app -p stigg-emulator -p stripe-emulator, then -p onboarding-bench)",
                config.bin_dir.join(binary).display()
            );
        }
    }
    let plans = plan_codes(&config.root.join("config/plans.toml"))?;
    let mut bench = Bench {
        ticks: procs::clock_ticks(),
        plans,
        pg: None,
        report: Report {
            started: chrono::Utc::now().format("%Y-%m-%d %H:%M").to_string(),
            machine: machine.to_json(),
            ..Report::default()
        },
        bad_request_answer: None,
        disturbed: Vec::new(),
        work,
        config,
    };
    bench.report.settings = bench.settings_json();
    let outcome = bench.run_all();
    // Whatever happened, stop PostgreSQL before reporting.
    let pg_version = bench.pg.as_ref().map(|pg| pg.version.clone());
    let pgbench_version = bench.pg.as_ref().map(|pg| pgbench::version(&pg.pgbench()));
    bench.pg = None;
    outcome?;
    bench.report.wall_s = started.elapsed().as_secs_f64();
    bench.report.tools = json!({
        "wrk": wrk::version(),
        "postgres": pg_version.unwrap_or_default(),
        "pgbench": pgbench_version.unwrap_or_default(),
    });
    bench.finish(&stamp)
}

/// Plan codes of the catalog, in file order (`[plans.<code>]`).
fn plan_codes(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let plans: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("[plans.")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    if plans.is_empty() {
        bail!("no plans in {}", path.display());
    }
    Ok(plans)
}

impl Bench {
    fn settings_json(&self) -> Value {
        let c = &self.config;
        let r = c.ranges();
        json!({
            "concurrency": c.concurrency,
            "threads": c.threads,
            "durationS": c.duration_s,
            "warmupS": c.warmup_s,
            "orgs": c.orgs,
            "replaySubscriptions": c.replay,
            "reconcileSubscriptions": c.reconcile,
            "sharedReconcileSubscriptions": c.shared_reconcile,
            "firstTimeRequestsMax": c.first_time,
            "probeRequests": c.probe,
            "quotaPerMinute": c.quota_per_minute,
            "reconcileConcurrency": c.reconcile_concurrency,
            "startupRuns": c.startup_runs,
            "dbPool": c.db_pool,
            "webhookEvents": c.webhook_events,
            "syncRatePerSecond": c.sync_rate,
            "syncDurationS": c.sync_duration_s,
            "syncSubscriptions": c.sync_subscriptions,
            "database": if c.database_url.is_some() { "BENCH_DATABASE_URL" } else { "throwaway cluster" },
            "scenarios": c.scenarios,
            "serviceEnv": c.service_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "ranges": {
                "replay": [r.replay.start, r.replay.end - 1],
                "reconcile": [r.reconcile.start, r.reconcile.end - 1],
                "shared": [r.shared.start, r.shared.end - 1],
                "firstTime": [r.first_time.start, r.first_time.end - 1],
            },
        })
    }

    fn pg(&self) -> anyhow::Result<&Postgres> {
        self.pg.as_ref().context("PostgreSQL is not running")
    }

    fn run_all(&mut self) -> anyhow::Result<()> {
        let needs_pg = ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .any(|s| self.config.runs(s));
        if needs_pg {
            say("starting PostgreSQL and seeding");
            let pg = Postgres::start(&self.config, &self.work)?;
            self.migrate(&pg)?;
            let seeded = Instant::now();
            pg.seed(&self.config, &self.plans)?;
            say(&format!(
                "seeded {} organizations and subscriptions ({} pre-provisioned) in {:.1} s",
                self.config.orgs,
                self.config.replay,
                seeded.elapsed().as_secs_f64()
            ));
            self.report.details.insert(
                "seedSeconds".into(),
                json!(round(seeded.elapsed().as_secs_f64(), 1)),
            );
            if !pg.pgss {
                self.report.notes.push(
                    "pg_stat_statements is not loaded on this server: statement counts and the debug-log batch size are not measured (batch size taken as 1).".into(),
                );
            }
            self.pg = Some(pg);
        }
        let emulator = self.start_emulator("emulator", None)?;
        if self.config.runs("startup") {
            self.startup(&emulator)?;
        }
        if needs_pg {
            self.capture(&emulator)?;
        }
        for (name, scenario) in WITH_SHARED_EMULATOR {
            if self.config.runs(name) {
                scenario(self, &emulator)?;
            }
        }
        emulator.daemon.stop(Duration::from_secs(10));
        // Scenarios e and h start an emulator of their own, limited to the quota.
        if self.config.runs("e") {
            self.reconcile_quota()?;
        }
        if self.config.runs("h") {
            self.shared_budget()?;
        }
        self.rss_row();
        Ok(())
    }

    fn migrate(&self, pg: &Postgres) -> anyhow::Result<()> {
        let mut c = Command::new(self.config.bin_dir.join("onboarding"));
        c.arg("migrate")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &pg.url)
            .current_dir(&self.work);
        procs::run_ok(&mut c, Duration::from_secs(120), "onboarding migrate")?;
        Ok(())
    }

    fn rss_row(&mut self) {
        let peak = self
            .report
            .rows
            .iter()
            .filter_map(|r| r.peak_rss_mib.map(|p| (p, r.id.clone())))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((peak, id)) = peak {
            self.report.rows.push(Row {
                id: "RSS".into(),
                title: "peak resident memory under load".into(),
                peak_rss_mib: Some(peak),
                limit: format!("highest VmHWM of the service over all scenarios ({id})"),
                target: format!("≤ {TARGET_RSS_MIB:.0} MiB"),
                ratio: format!("{peak:.1} MiB"),
                pass: Some(peak <= TARGET_RSS_MIB),
                ..Row::default()
            });
        }
    }

    // ----- output ------------------------------------------------------------------------

    fn finish(mut self, stamp: &str) -> anyhow::Result<String> {
        let misses: Vec<String> = self
            .report
            .rows
            .iter()
            .filter(|r| r.pass == Some(false))
            .map(|r| format!("{} {} ({} against {})", r.id, r.title, r.ratio, r.target))
            .collect();
        if !misses.is_empty() {
            self.report
                .notes
                .insert(0, format!("Missed: {}.", misses.join("; ")));
        }
        if !self.disturbed.is_empty() {
            let list: Vec<String> = self
                .disturbed
                .iter()
                .map(|(scenario, names)| format!("{scenario} ({})", names.join(", ")))
                .collect();
            say(&format!(
                "warning: other programs ran during the measured runs of {}",
                list.join("; ")
            ));
            self.report.notes.insert(
                0,
                format!(
                    "**Disturbed run**: other programs ran on the machine during the measured runs of {}; those figures are not comparable. Run again on a quiet machine.",
                    list.join("; ")
                ),
            );
            self.report.details.insert(
                "disturbedBy".into(),
                Value::Object(
                    self.disturbed
                        .iter()
                        .map(|(s, n)| (s.clone(), json!(n)))
                        .collect(),
                ),
            );
        }
        let markdown = self.report.markdown();
        let json = serde_json::to_string_pretty(&self.report.to_json())?;
        let json_path = self.config.out_dir.join(format!("{stamp}.json"));
        let md_path = self.config.out_dir.join(format!("{stamp}.md"));
        std::fs::write(&json_path, &json)?;
        std::fs::write(&md_path, format!("# Benchmark {stamp}\n\n{markdown}"))?;
        if let Some(docs) = &self.config.docs {
            report::write_docs(docs, &markdown)?;
            say(&format!("wrote {}", docs.display()));
        }
        say(&format!(
            "wrote {} and {}",
            json_path.display(),
            md_path.display()
        ));
        Ok(markdown)
    }
}
