//! The run: set-up, the scenarios with their limits, and the reports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::config::Config;
use crate::http;
use crate::machine::Machine;
use crate::pg::{self, Postgres, Statement};
use crate::pgbench::{self, Length};
use crate::procs::{self, Daemon, ProcStats};
use crate::report::{self, Report, Row, StatementTable};
use crate::wrk::{self, Body, Figures, round};

const API_KEY: &str = "bench-stigg-key";
const API_TOKEN: &str = "bench-api-token";
const REQUEST_ID: &str = "bench-req";
const CORRELATION_ID: &str = "bench-corr";
const ROUTE: &str = "/api/stigg/provision";
/// The client-side Stigg budget while the emulator has no rate limit (scenarios a–d).
const UNLIMITED_CALLS_PER_MINUTE: u32 = 60_000_000;
const MIB: f64 = 1024.0;
/// Targets of the issue.
const TARGET_BARE: f64 = 0.8;
const TARGET_PGBENCH: f64 = 0.6;
const TARGET_LATENCY_MARGIN_MS: f64 = 2.0;
const TARGET_QUOTA: f64 = 0.95;
const TARGET_RSS_MIB: f64 = 64.0;
const TARGET_STARTUP_MS: f64 = 200.0;

fn say(message: &str) {
    eprintln!("bench: {message}");
}

struct Emulator {
    daemon: Daemon,
    addr: SocketAddr,
}

struct Service {
    daemon: Daemon,
    addr: SocketAddr,
}

impl Service {
    fn stats(&self) -> anyhow::Result<ProcStats> {
        self.daemon.stats()
    }

    fn statuses(&self) -> anyhow::Result<Vec<(String, f64)>> {
        let metrics = http::get(self.addr, "/metrics", Duration::from_secs(10))?.text();
        Ok(http::counter_by(
            &metrics,
            "onboarding_http_requests_total",
            &[("route", ROUTE)],
            "status",
        ))
    }
}

/// What one measured wrk run against the service gave.
struct Measured {
    figures: Figures,
    cpu_s: f64,
    peak_rss_mib: f64,
    /// Share of the machine's CPUs busy during the measured run.
    machine_busy: f64,
    /// Answers by status during the measured run (the service's own counter).
    statuses: Vec<(String, f64)>,
    statements: Vec<Statement>,
}

impl Measured {
    fn unexpected(&self, expected: &str) -> u64 {
        self.statuses
            .iter()
            .filter(|(status, _)| status != expected)
            .map(|(_, n)| *n as u64)
            .sum()
    }

    fn errors(&self, expected: &str) -> u64 {
        self.figures.socket_errors + self.unexpected(expected)
    }

    fn statuses_json(&self) -> Value {
        Value::Object(
            self.statuses
                .iter()
                .map(|(s, n)| (s.clone(), json!(*n as u64)))
                .collect(),
        )
    }
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
    for binary in ["onboarding", "stigg-emulator", "bare-handler"] {
        if !config.bin_dir.join(binary).is_file() {
            bail!(
                "{} is missing: build first (bench/run.sh does: cargo build --release -p onboarding-app -p stigg-emulator, then -p onboarding-bench)",
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
            "firstTimeRequestsMax": c.first_time,
            "probeRequests": c.probe,
            "quotaPerMinute": c.quota_per_minute,
            "reconcileConcurrency": c.reconcile_concurrency,
            "startupRuns": c.startup_runs,
            "dbPool": c.db_pool,
            "database": if c.database_url.is_some() { "BENCH_DATABASE_URL" } else { "throwaway cluster" },
            "scenarios": c.scenarios,
            "serviceEnv": c.service_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "ranges": {
                "replay": [r.replay.start, r.replay.end - 1],
                "reconcile": [r.reconcile.start, r.reconcile.end - 1],
                "firstTime": [r.first_time.start, r.first_time.end - 1],
            },
        })
    }

    fn pg(&self) -> anyhow::Result<&Postgres> {
        self.pg.as_ref().context("PostgreSQL is not running")
    }

    fn run_all(&mut self) -> anyhow::Result<()> {
        let needs_pg = ["a", "b", "c", "d", "e"]
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
        if self.config.runs("a") {
            self.scenario_a(&emulator)?;
        }
        if self.config.runs("b") {
            self.scenario_lookup('b', &emulator)?;
        }
        if self.config.runs("c") {
            self.scenario_lookup('c', &emulator)?;
        }
        if self.config.runs("d") {
            self.scenario_d(&emulator)?;
        }
        emulator.daemon.stop(Duration::from_secs(10));
        if self.config.runs("e") {
            self.scenario_e()?;
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

    // ----- processes -------------------------------------------------------------------

    fn start_emulator(&self, name: &str, rate_limit: Option<u32>) -> anyhow::Result<Emulator> {
        let port = procs::free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut args = vec![
            "--bind".to_owned(),
            addr.to_string(),
            "--api-key".to_owned(),
            API_KEY.to_owned(),
        ];
        if let Some(limit) = rate_limit {
            args.push("--rate-limit-per-minute".to_owned());
            args.push(limit.to_string());
        }
        let daemon = Daemon::start(
            name,
            "TERM",
            &self.config.bin_dir.join("stigg-emulator"),
            &args,
            &[("RUST_LOG".to_owned(), "warn".to_owned())],
            &self.work.join(format!("{name}.log")),
            &self.work,
        )?;
        wait_http(addr, "/_emulator/health", &daemon)?;
        Ok(Emulator { daemon, addr })
    }

    fn service_env(
        &self,
        database_url: &str,
        stigg: SocketAddr,
        calls_per_minute: u32,
        bind: Option<SocketAddr>,
    ) -> Vec<(String, String)> {
        let mut env = vec![
            ("DATABASE_URL", database_url.to_owned()),
            ("DATABASE_MAX_CONNECTIONS", self.config.db_pool.to_string()),
            ("STIGG_API_URL", format!("http://{stigg}")),
            ("STIGG_API_KEY", API_KEY.to_owned()),
            ("STIGG_CALLS_PER_MINUTE", calls_per_minute.to_string()),
            ("APP_ENV", "production".to_owned()),
            ("API_TOKEN", API_TOKEN.to_owned()),
            (
                "PLAN_CATALOG",
                self.config
                    .root
                    .join("config/plans.toml")
                    .display()
                    .to_string(),
            ),
        ];
        if let Some(bind) = bind {
            env.push(("BIND_ADDR", bind.to_string()));
        }
        let mut env: Vec<(String, String)> =
            env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        for (name, value) in &self.config.service_env {
            env.retain(|(k, _)| k != name);
            env.push((name.clone(), value.clone()));
        }
        env
    }

    fn start_service(
        &self,
        name: &str,
        stigg: SocketAddr,
        calls_per_minute: u32,
    ) -> anyhow::Result<Service> {
        let pg = self.pg()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], procs::free_port()?));
        let env = self.service_env(&pg.url, stigg, calls_per_minute, Some(addr));
        let daemon = Daemon::start(
            name,
            "TERM",
            &self.config.bin_dir.join("onboarding"),
            &["serve".to_owned()],
            &env,
            &self.work.join(format!("{name}.log")),
            &self.work,
        )?;
        wait_http(addr, "/readyz", &daemon)?;
        Ok(Service { daemon, addr })
    }

    fn headers(&self) -> Vec<String> {
        vec![
            "Content-Type: application/json".to_owned(),
            format!("Authorization: Bearer {API_TOKEN}"),
            format!("x-request-id: {REQUEST_ID}"),
            format!("x-correlation-id: {CORRELATION_ID}"),
        ]
    }

    fn load(&self, addr: SocketAddr, body: Body, connections: u32, duration_s: u32) -> wrk::Load {
        wrk::Load {
            addr,
            path: ROUTE.to_owned(),
            method: "POST".to_owned(),
            headers: self.headers(),
            body,
            connections,
            threads: self.config.threads.min(connections),
            duration_s,
            width: self.config.width(),
            plans: self.plans.clone(),
            idempotency_prefix: None,
        }
    }

    fn n(&self, n: u64) -> String {
        format!("{n:0width$}", width = self.config.width())
    }

    fn plan_of(&self, n: u64) -> &str {
        let i = usize::try_from((n.max(1) - 1) % self.plans.len() as u64).unwrap_or(0);
        self.plans.get(i).map_or("plan_starter_m", String::as_str)
    }

    /// Warm-up (unmeasured), then the measured run with CPU, memory, statuses and statements.
    fn measure(
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
        let before = service.statuses()?;
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
        let after = service.statuses()?;
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
    fn watch(&mut self, scenario: &str) {
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

    // ----- start-up ------------------------------------------------------------------

    /// Spawn → first 200 on /readyz, on a fresh SQLite file each time.
    fn startup(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
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

    // ----- statement capture ---------------------------------------------------------

    fn bodies(&self) -> Vec<(&'static str, String)> {
        let r = self.config.ranges();
        let one = self.n(1);
        let cap = self.n(r.capture);
        vec![
            (
                "a",
                format!(
                    r#"{{"orgId":"org_b{one}","stripeCustomerId":"cus_B{one}","stripeSubscriptionId":"sub_B{one}","planCode":"plan_unknown"}}"#
                ),
            ),
            (
                "b",
                format!(
                    r#"{{"orgId":"org_x{one}","stripeCustomerId":"cus_X{one}","stripeSubscriptionId":"sub_X{one}","planCode":"{}"}}"#,
                    self.plans[0]
                ),
            ),
            (
                "c",
                format!(
                    r#"{{"orgId":"org_b{one}","stripeCustomerId":"cus_B{one}","stripeSubscriptionId":"sub_B{one}","planCode":"{}"}}"#,
                    self.plan_of(1)
                ),
            ),
            (
                "d",
                format!(
                    r#"{{"orgId":"org_b{cap}","stripeCustomerId":"cus_B{cap}","stripeSubscriptionId":"sub_B{cap}","planCode":"{}"}}"#,
                    self.plan_of(r.capture)
                ),
            ),
        ]
    }

    fn post(&self, addr: SocketAddr, body: &str) -> anyhow::Result<http::Response> {
        http::request(
            addr,
            "POST",
            ROUTE,
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &format!("Bearer {API_TOKEN}")),
                ("x-request-id", REQUEST_ID),
                ("x-correlation-id", CORRELATION_ID),
            ],
            Some(body.as_bytes()),
            Duration::from_secs(20),
        )
    }

    /// One request per path with `log_statement = all`: the exact SQL, in order.
    fn capture(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        say("capturing the SQL of each path (one request each, log_statement = all)");
        let service =
            self.start_service("service-capture", emulator.addr, UNLIMITED_CALLS_PER_MINUTE)?;
        // Open the pool's connections first, so the capture shows the steady state.
        for (_, body) in self.bodies().iter().take(3) {
            self.post(service.addr, body)?;
        }
        let pg = self.pg()?;
        let log_path = pg.log_path();
        if log_path.is_some() {
            pg.log_all_statements(true)?;
        }
        let mut expected = Vec::new();
        for (path, body) in self.bodies() {
            self.pg()?.query(&format!("SELECT 'bench-mark:{path}'"))?;
            let answer = self.post(service.addr, &body)?;
            // The debug-log row is written just after the answer (ADR 0006): let it land
            // before the end mark.
            std::thread::sleep(Duration::from_millis(100));
            self.pg()?
                .query(&format!("SELECT 'bench-mark:end-{path}'"))?;
            if path == "a" {
                self.bad_request_answer = Some(answer.text());
            }
            expected.push((path, answer.status, answer.text()));
        }
        if log_path.is_some() {
            self.pg()?.log_all_statements(false)?;
        }
        service.daemon.stop(Duration::from_secs(15));
        for (path, status, text) in &expected {
            let want = match *path {
                "a" => 400,
                "b" => 404,
                _ => 200,
            };
            if *status != want {
                bail!("the {path} request answered {status}, not {want}: {text}");
            }
        }
        if let Some(log_path) = log_path {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            for (path, _, _) in &expected {
                let statements = pg::statements_between(
                    &log,
                    &format!("bench-mark:{path}'"),
                    &format!("bench-mark:end-{path}'"),
                )
                .into_iter()
                .filter(|s| !s.starts_with("SELECT 'bench-mark"))
                .collect::<Vec<_>>();
                self.report.captured.push(((*path).to_owned(), statements));
            }
            self.check_scripts();
            std::fs::write(
                self.work.join("captured-sql.json"),
                serde_json::to_string_pretty(&json!(
                    self.report
                        .captured
                        .iter()
                        .map(|(p, s)| json!({"path": p, "statements": s}))
                        .collect::<Vec<_>>()
                ))?,
            )?;
        }
        Ok(())
    }

    /// Compares the captured SQL of paths b, c and d with the pgbench scripts, statement
    /// by statement (shapes: parameters, literals and NULLs aside), and says where they differ.
    fn check_scripts(&mut self) {
        let mut results = serde_json::Map::new();
        for (path, script, with_batch) in [
            ("b", "lookup_unknown_org.sql", true),
            ("c", "lookup_replay.sql", true),
            ("d", "first_time.sql", false),
        ] {
            let Some((_, captured)) = self.report.captured.iter().find(|(p, _)| p == path) else {
                continue;
            };
            let mut service: Vec<String> = captured
                .iter()
                .map(|sql| pg::kind(sql))
                .filter(|k| !k.starts_with("SET "))
                .collect();
            let text = std::fs::read_to_string(self.config.root.join("bench/sql").join(script))
                .unwrap_or_default();
            let mut bench: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('\\') && !l.starts_with("--"))
                .map(|l| pg::kind(l.trim_end_matches("\\gset").trim()))
                .collect();
            if with_batch {
                bench.push(pg::kind(
                    "INSERT INTO \"debug_logs\" (\"request_id\") VALUES ($1)",
                ));
            }
            service.sort();
            bench.sort();
            let only_service: Vec<&String> =
                service.iter().filter(|k| !bench.contains(k)).collect();
            let only_bench: Vec<&String> = bench.iter().filter(|k| !service.contains(k)).collect();
            let same = service == bench;
            if !same {
                self.report.notes.push(format!(
                    "The pgbench script of scenario {path} ({script}) no longer matches the SQL captured from the service: {} statements captured, {} in the script; only in the service: {only_service:?}; only in the script: {only_bench:?}. Update bench/sql/{script}.",
                    service.len(),
                    bench.len()
                ));
            }
            results.insert(
                path.to_owned(),
                json!({ "script": script, "matches": same, "capturedStatements": service.len(), "scriptStatements": bench.len() }),
            );
        }
        self.report
            .details
            .insert("scriptCheck".into(), Value::Object(results));
    }

    // ----- (a) ---------------------------------------------------------------------------

    fn scenario_a(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        say("scenario a: 400 validation failure, then the bare handler");
        let c = self.config.concurrency;
        let body = self.bodies()[0].1.clone();
        self.pg()?.checkpoint()?;
        let service = self.start_service("service-a", emulator.addr, UNLIMITED_CALLS_PER_MINUTE)?;
        if self.bad_request_answer.is_none() {
            self.bad_request_answer = Some(self.post(service.addr, &body)?.text());
        }
        let warm = self.load(
            service.addr,
            Body::Static(body.clone()),
            c,
            self.config.warmup_s,
        );
        let load = self.load(
            service.addr,
            Body::Static(body.clone()),
            c,
            self.config.duration_s,
        );
        let m = self.measure(&service, Some(warm), load, "a")?;
        service.daemon.stop(Duration::from_secs(15));
        let batch = debug_log_batch(&m.statements);

        // The limit: the bare handler, same generator, same request.
        let answer_file = self.work.join("bare-handler-answer.json");
        std::fs::write(
            &answer_file,
            self.bad_request_answer.clone().unwrap_or_default(),
        )?;
        let addr = SocketAddr::from(([127, 0, 0, 1], procs::free_port()?));
        let bare = Daemon::start(
            "bare-handler",
            "TERM",
            &self.config.bin_dir.join("bare-handler"),
            &[
                "--bind".to_owned(),
                addr.to_string(),
                "--body-file".to_owned(),
                answer_file.display().to_string(),
            ],
            &[],
            &self.work.join("bare-handler.log"),
            &self.work,
        )?;
        wait_port(addr, &bare)?;
        let warm = self.load(addr, Body::Static(body.clone()), c, self.config.warmup_s);
        if self.config.warmup_s > 0 {
            wrk::run(
                &self.config.root,
                &warm,
                &self.work.join("wrk-a-bare-warmup.txt"),
            )?;
        }
        let s0 = bare.stats()?;
        self.watch("a");
        let m0 = procs::MachineCpu::now();
        let limit = wrk::run(
            &self.config.root,
            &self.load(addr, Body::Static(body), c, self.config.duration_s),
            &self.work.join("wrk-a-bare.txt"),
        )?;
        let s1 = bare.stats()?;
        let bare_busy = procs::MachineCpu::now().busy_percent_since(&m0);
        self.watch("a");
        bare.stop(Duration::from_secs(10));
        let bare_2xx = limit.requests.saturating_sub(limit.non_2xx);

        let ratio = m.figures.rps / limit.rps;
        self.report.details.insert(
            "a".into(),
            json!({
                "service": m.figures.to_json(),
                "serviceStatuses": m.statuses_json(),
                "bareHandler": limit.to_json(),
                "bareHandlerCpuSeconds": round((s1.cpu_ticks - s0.cpu_ticks) as f64 / self.ticks, 2),
                "bareHandlerPeakRssMiB": round(s1.peak_rss_kib as f64 / MIB, 1),
                "bareHandlerMachineBusyPercent": round(bare_busy, 1),
                "debugLogRowsPerInsert": batch.map(|b| round(b.rows_per_insert, 2)),
            }),
        );
        self.report.rows.push(Row {
            id: "a".into(),
            title: "400 validation failure".into(),
            concurrency: Some(c),
            rps: Some(m.figures.rps),
            p50_ms: Some(m.figures.p50_ms),
            p99_ms: Some(m.figures.p99_ms),
            p999_ms: Some(m.figures.p999_ms),
            errors: Some(m.errors("400")),
            peak_rss_mib: Some(m.peak_rss_mib),
            cpu_s: Some(m.cpu_s),
            machine_busy: Some(m.machine_busy),
            limit: format!(
                "bare actix-web handler: {} req/s (p50 {:.2} ms, p99 {:.2} ms, {} errors, machine {bare_busy:.0} % busy)",
                report::rate(limit.rps),
                limit.p50_ms,
                limit.p99_ms,
                limit.socket_errors + bare_2xx
            ),
            target: format!("≥ {TARGET_BARE:.2} × limit"),
            ratio: format!("{ratio:.3}"),
            pass: Some(ratio >= TARGET_BARE),
        });
        if let Some(table) = self.statement_table("a", &m, None, 0.0) {
            self.report.statement_tables.push(table);
        }
        Ok(())
    }

    // ----- (b), (c) ----------------------------------------------------------------------

    fn scenario_lookup(&mut self, which: char, emulator: &Emulator) -> anyhow::Result<()> {
        let c = self.config.concurrency;
        let r = self.config.ranges();
        let (title, template, first, last, expected, script, code) = match which {
            'b' => (
                "404 unknown organization",
                format!(r#"{{"orgId":"org_x{{n}}","stripeCustomerId":"cus_X{{n}}","stripeSubscriptionId":"sub_X{{n}}","planCode":"{}"}}"#, self.plans[0]),
                1,
                self.config.orgs,
                "404",
                "lookup_unknown_org.sql",
                Some("NOT_FOUND"),
            ),
            _ => (
                "replay of a provisioned subscription",
                r#"{"orgId":"org_b{n}","stripeCustomerId":"cus_B{n}","stripeSubscriptionId":"sub_B{n}","planCode":"{plan}"}"#.to_owned(),
                r.replay.start,
                r.replay.end - 1,
                "200",
                "lookup_replay.sql",
                None,
            ),
        };
        say(&format!(
            "scenario {which}: {title}, then pgbench on its statements"
        ));
        self.pg()?.checkpoint()?;
        let service = self.start_service(
            &format!("service-{which}"),
            emulator.addr,
            UNLIMITED_CALLS_PER_MINUTE,
        )?;
        let body = || Body::Random {
            template: template.clone(),
            first,
            last,
        };
        let warm = self.load(service.addr, body(), c, self.config.warmup_s);
        let load = self.load(service.addr, body(), c, self.config.duration_s);
        let m = self.measure(&service, Some(warm), load, &which.to_string())?;
        service.daemon.stop(Duration::from_secs(15));

        // The limit: the same statements through pgbench, at the same concurrency and at the
        // service's pool size; the better of the two is the ceiling.
        let batch = debug_log_batch(&m.statements);
        let rows = batch.map_or(1, |b| b.rows_per_insert.round().max(1.0) as u32);
        let batch_script = self.write_batch_script(which, rows, code)?;
        let lookup_script = self.config.root.join("bench/sql").join(script);
        let mut runs = Vec::new();
        let mut clients = vec![c];
        if self.config.db_pool != c {
            clients.push(self.config.db_pool);
        }
        let mut pgbench_statements = Vec::new();
        for clients in clients {
            let pg = self.pg()?;
            pg.checkpoint()?;
            pg.reset_statements()?;
            let spec = pgbench::Run {
                scripts: vec![(lookup_script.clone(), rows), (batch_script.clone(), 1)],
                clients,
                threads: self.config.threads,
                length: Length::Seconds(self.config.duration_s),
                defines: self.pgbench_defines(which, code.is_some()),
                per_statement: false,
            };
            let m0 = procs::MachineCpu::now();
            let figures = pgbench::run(
                &pg.pgbench(),
                &pg.url,
                &spec,
                &self.work.join(format!("pgbench-{which}-c{clients}.txt")),
            )?;
            let busy = procs::MachineCpu::now().busy_percent_since(&m0);
            let statements = pg.statements()?;
            self.watch(&which.to_string());
            let lookups = figures.script(script).map_or(0, |s| s.transactions);
            if pgbench_statements.is_empty() {
                pgbench_statements = statements;
            }
            runs.push((clients, figures, lookups, busy));
        }
        let best = runs
            .iter()
            .map(|(clients, f, _, busy)| (*clients, f.script(script).map_or(0.0, |s| s.tps), *busy))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((c, 0.0, 0.0));
        let ratio = m.figures.rps / best.1;
        let pgbench_lookups = runs.first().map_or(0, |r| r.2);
        self.report.details.insert(
            which.to_string(),
            json!({
                "service": m.figures.to_json(),
                "serviceStatuses": m.statuses_json(),
                "debugLogRowsPerInsert": batch.map(|b| round(b.rows_per_insert, 2)),
                "pgbench": runs.iter().map(|(_, f, _, busy)| {
                    let mut v = f.to_json();
                    v["machineBusyPercent"] = json!(round(*busy, 1));
                    v
                }).collect::<Vec<_>>(),
                "pgbenchBatchRows": rows,
            }),
        );
        let others: Vec<String> = runs
            .iter()
            .filter(|(clients, _, _, _)| *clients != best.0)
            .map(|(clients, f, _, _)| {
                format!(
                    "{} at {clients}",
                    report::rate(f.script(script).map_or(0.0, |s| s.tps))
                )
            })
            .collect();
        self.report.rows.push(Row {
            id: which.to_string(),
            title: title.to_owned(),
            concurrency: Some(c),
            rps: Some(m.figures.rps),
            p50_ms: Some(m.figures.p50_ms),
            p99_ms: Some(m.figures.p99_ms),
            p999_ms: Some(m.figures.p999_ms),
            errors: Some(m.errors(expected)),
            peak_rss_mib: Some(m.peak_rss_mib),
            cpu_s: Some(m.cpu_s),
            machine_busy: Some(m.machine_busy),
            limit: format!(
                "pgbench, same statements: {} req/s at {} clients, machine {:.0} % busy{}",
                report::rate(best.1),
                best.0,
                best.2,
                if others.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", others.join(", "))
                }
            ),
            target: format!("≥ {TARGET_PGBENCH:.2} × limit"),
            ratio: format!("{ratio:.3}"),
            pass: Some(ratio >= TARGET_PGBENCH),
        });
        let pgbench_table =
            (!pgbench_statements.is_empty()).then_some((pgbench_statements, pgbench_lookups));
        if let Some(table) =
            self.statement_table(&which.to_string(), &m, pgbench_table, f64::from(rows))
        {
            self.report.statement_tables.push(table);
        }
        Ok(())
    }

    fn pgbench_defines(&self, which: char, with_code: bool) -> Vec<(String, String)> {
        let now = chrono::Utc::now().naive_utc();
        let n1 = self.n(1);
        let (body, status) = match which {
            'b' => (
                format!(
                    r#"{{"orgId":"org_x{n1}","planCode":"{}","stripeCustomerId":"cus_X{n1}","stripeSubscriptionId":"sub_X{n1}"}}"#,
                    self.plans[0]
                ),
                "404",
            ),
            'c' => (
                format!(
                    r#"{{"orgId":"org_b{n1}","planCode":"{}","stripeCustomerId":"cus_B{n1}","stripeSubscriptionId":"sub_B{n1}"}}"#,
                    self.plan_of(1)
                ),
                "200",
            ),
            _ => (
                format!(
                    r#"{{"orgId":"org_b{n1}","planCode":"{}","stripeCustomerId":"cus_B{n1}","stripeSubscriptionId":"sub_B{n1}"}}"#,
                    self.plan_of(1)
                ),
                "200",
            ),
        };
        let mut d = vec![
            ("orgs", self.config.orgs.to_string()),
            ("replay", self.config.replay.to_string()),
            ("width", self.config.width().to_string()),
            ("one", "1".to_owned()),
            ("rid", REQUEST_ID.to_owned()),
            ("cid", CORRELATION_ID.to_owned()),
            ("method", "POST".to_owned()),
            ("path", ROUTE.to_owned()),
            ("body", body),
            ("status", status.to_owned()),
            ("dur", "1".to_owned()),
            ("now", now.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
            (
                "later",
                (now + chrono::Duration::seconds(20))
                    .format("%Y-%m-%d %H:%M:%S%.6f")
                    .to_string(),
            ),
            ("holder", "01a20c50-eb13-75cf-a8c6-c147ba3ef1cb".to_owned()),
        ];
        if with_code {
            d.push(("code", "NOT_FOUND".to_owned()));
        }
        d.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// The debug-log write as the service did it in the measured run: one INSERT of `rows` rows
    /// (the measured average rows per INSERT, rounded).
    fn write_batch_script(
        &self,
        which: char,
        rows: u32,
        code: Option<&str>,
    ) -> anyhow::Result<PathBuf> {
        // The row's values as literals: pgbench allows at most 255 variables per statement,
        // fewer than a big batch binds. Literals spare PostgreSQL the binding, so if anything
        // this ceiling is a little higher than the service's own statement could reach.
        let defines: std::collections::HashMap<String, String> = self
            .pgbench_defines(which, code.is_some())
            .into_iter()
            .collect();
        let literal = |name: &str| {
            defines.get(name).map_or_else(
                || "NULL".to_owned(),
                |v| format!("'{}'", v.replace('\'', "''")),
            )
        };
        let row = format!(
            "({}, {}, NULL, {}, {}, {}, {}, {}, {}, {})",
            literal("rid"),
            literal("cid"),
            literal("method"),
            literal("path"),
            literal("body"),
            literal("status"),
            literal("code"),
            literal("dur"),
            literal("now"),
        );
        let values = vec![row; rows as usize].join(", ");
        let sql = format!(
            "-- Generated by the benchmark: the debug-log write of scenario {which} as the service did it\n\
             -- in the measured run, {rows} row(s) per INSERT (group commit). Weighted 1 against the\n\
             -- lookup script's {rows}, so pgbench writes one row per request-equivalent.\n\
             INSERT INTO \"debug_logs\" (\"request_id\", \"correlation_id\", \"tenant_id\", \"method\", \"path\", \"request_body\", \"status\", \"error_code\", \"duration_ms\", \"created_at\") VALUES {values};\n"
        );
        let path = self.work.join(format!("debug_log_batch_{which}.sql"));
        std::fs::write(&path, sql)?;
        Ok(path)
    }

    /// Statements per request: the service's (pg_stat_statements over the measured run) next
    /// to pgbench's per request-equivalent.
    fn statement_table(
        &self,
        scenario: &str,
        m: &Measured,
        pgbench: Option<(Vec<Statement>, u64)>,
        batch_rows: f64,
    ) -> Option<StatementTable> {
        if m.statements.is_empty() || m.figures.requests == 0 {
            return None;
        }
        // Requests answered during the measured window, by the service's own count.
        let requests: f64 = m.statuses.iter().map(|(_, n)| *n).sum::<f64>().max(1.0);
        let group = |statements: &[Statement]| -> Vec<(String, u64, f64)> {
            let mut out: Vec<(String, u64, f64)> = Vec::new();
            for s in statements {
                let k = pg::kind(&s.query);
                match out.iter_mut().find(|(kk, _, _)| *kk == k) {
                    Some((_, calls, ms)) => {
                        *calls += s.calls;
                        *ms += s.total_ms;
                    }
                    None => out.push((k, s.calls, s.total_ms)),
                }
            }
            out
        };
        let svc = group(&m.statements);
        let pgb = pgbench
            .as_ref()
            .map(|(s, lookups)| (group(s), *lookups as f64));
        let mut rows: Vec<(String, f64, Option<f64>, f64)> = svc
            .iter()
            .filter(|(k, _, _)| !k.starts_with("SET "))
            .map(|(k, calls, ms)| {
                let per_pgbench = pgb.as_ref().map(|(list, lookups)| {
                    list.iter()
                        .filter(|(kk, _, _)| kk == k)
                        .map(|(_, calls, _)| *calls as f64 / lookups.max(1.0))
                        .sum::<f64>()
                });
                (
                    k.clone(),
                    *calls as f64 / requests,
                    per_pgbench,
                    ms / (*calls).max(1) as f64,
                )
            })
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        let inserts = debug_log_batch(&m.statements);
        let note = match inserts {
            Some(b) => format!(
                "The service wrote its {} debug-log rows in {} INSERT statements: {:.1} rows per statement (group commit){}.",
                b.rows,
                b.calls,
                b.rows_per_insert,
                if batch_rows > 0.0 {
                    format!("; pgbench's batch script inserts {batch_rows:.0} rows per statement")
                } else {
                    String::new()
                }
            ),
            None => String::new(),
        };
        Some(StatementTable {
            scenario: scenario.to_owned(),
            rows,
            note,
        })
    }

    // ----- (d) ---------------------------------------------------------------------------

    fn scenario_d(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        say("scenario d: first-time provisioning of distinct subscriptions");
        let c = self.config.concurrency;
        let r = self.config.ranges();
        let template = r#"{"orgId":"org_b{n}","stripeCustomerId":"cus_B{n}","stripeSubscriptionId":"sub_B{n}","planCode":"{plan}"}"#;
        self.pg()?.checkpoint()?;
        let service = self.start_service("service-d", emulator.addr, UNLIMITED_CALLS_PER_MINUTE)?;
        let seq = |first: u64, count: u64| Body::Sequence {
            template: template.to_owned(),
            first,
            count,
        };
        let warm = self.load(
            service.addr,
            seq(r.warmup.start, r.warmup.end - r.warmup.start),
            c,
            self.config.warmup_s,
        );
        let load = self.load(
            service.addr,
            seq(r.first_time.start, self.config.first_time),
            c,
            self.config.duration_s,
        );
        let m = self.measure(&service, Some(warm), load, "d")?;
        let provisioned = self.pg()?.count(&format!(
            "SELECT count(*) FROM stigg_subscription_provisions WHERE provisioned_at IS NOT NULL \
             AND stripe_subscription_id >= 'sub_B{}' AND stripe_subscription_id <= 'sub_B{}'",
            self.n(r.first_time.start),
            self.n(r.first_time.end - 1)
        ))?;

        // Latency at concurrency 1: the service, then each round trip on its own.
        say("scenario d: latency probes at concurrency 1 (service, emulator, pgbench)");
        let probe_s = self.config.probe_s;
        let probe = self.load(
            service.addr,
            seq(r.service_probe.start, self.config.probe),
            1,
            probe_s,
        );
        self.watch("d");
        let svc1 = wrk::run(&self.config.root, &probe, &self.work.join("wrk-d-c1.txt"))?;
        service.daemon.stop(Duration::from_secs(15));

        let emu = |path: &str, template: &str, prefix: &str, count: u64| wrk::Load {
            addr: emulator.addr,
            path: path.to_owned(),
            method: "POST".to_owned(),
            headers: vec![
                "Content-Type: application/json".to_owned(),
                "Accept: application/json".to_owned(),
                format!("X-API-KEY: {API_KEY}"),
                format!("x-correlation-id: {CORRELATION_ID}"),
                "User-Agent: onboarding/bench".to_owned(),
            ],
            body: Body::Sequence {
                template: template.to_owned(),
                first: 1,
                count,
            },
            connections: 1,
            threads: 1,
            duration_s: probe_s,
            width: self.config.width(),
            plans: self.plans.clone(),
            idempotency_prefix: Some(prefix.to_owned()),
        };
        let customers = wrk::run(
            &self.config.root,
            &emu(
                "/api/v1/customers",
                r#"{"id":"org_r{n}","name":"Bench org {n}","billingId":"cus_R{n}","metadata":{"orgId":"org_r{n}","stripeCustomerId":"cus_R{n}"}}"#,
                "customer:org_r",
                self.config.probe,
            ),
            &self.work.join("wrk-d-emulator-customers.txt"),
        )?;
        let subscriptions = wrk::run(
            &self.config.root,
            &emu(
                "/api/v1/subscriptions",
                r#"{"id":"sub_R{n}","customerId":"org_r{n}","planId":"plan-starter","billingPeriod":"MONTHLY","billingId":"sub_R{n}","paymentCollectionMethod":"NONE","trialOverrideConfiguration":{"isTrial":true,"trialEndDate":"2030-01-01T00:00:00Z","trialEndBehavior":"CONVERT_TO_PAID"},"metadata":{"orgId":"org_r{n}","planCode":"plan_starter_m","stripeSubscriptionId":"sub_R{n}"}}"#,
                "subscription:sub_R",
                // Only for customers that exist (the same numbers, from the same start).
                customers.requests.min(self.config.probe),
            ),
            &self.work.join("wrk-d-emulator-subscriptions.txt"),
        )?;
        let pg = self.pg()?;
        pg.checkpoint()?;
        let mut defines = self.pgbench_defines('d', false);
        defines.push(("first".to_owned(), (r.db_probe.start - 1).to_string()));
        defines.push(("stride".to_owned(), self.config.probe.to_string()));
        defines.push(("i".to_owned(), "0".to_owned()));
        let db = pgbench::run(
            &pg.pgbench(),
            &pg.url,
            &pgbench::Run {
                scripts: vec![(self.config.root.join("bench/sql/first_time.sql"), 1)],
                clients: 1,
                threads: 1,
                length: Length::Transactions(self.config.probe),
                defines,
                per_statement: true,
            },
            &self.work.join("pgbench-d-c1.txt"),
        )?;
        self.watch("d");
        // The debug-log row is written after the answer (ADR 0006), off the request's path.
        let sql: Vec<f64> = db
            .scripts
            .first()
            .map(|s| {
                s.statements
                    .iter()
                    .filter(|(_, cmd)| {
                        !cmd.starts_with('\\')
                            && !pg::kind(cmd).starts_with("INSERT INTO debug_logs")
                    })
                    .map(|(ms, _)| *ms)
                    .collect()
            })
            .unwrap_or_default();
        // The organization and subscription lookups run side by side in the service: only
        // the slower one is on the critical path.
        let parallel_saving = match sql.as_slice() {
            [a, b, ..] => a.min(*b),
            _ => 0.0,
        };
        let db_ms = sql.iter().sum::<f64>() - parallel_saving;
        let emu_ms = customers.p50_ms + subscriptions.p50_ms;
        let floor = db_ms + emu_ms;
        let margin = svc1.p50_ms - floor;
        let little = f64::from(c) / m.figures.rps * 1000.0;
        // wrk's thread stops when its share of the sequence is used up, but wrk still divides
        // by the whole duration: then the throughput is understated.
        let exhausted = m.figures.requests + u64::from(c) >= self.config.first_time;
        if exhausted {
            self.report.notes.push(format!(
                "Scenario d used up its {} subscriptions before the end of the run: its req/s is understated; raise BENCH_FIRST_TIME.",
                self.config.first_time
            ));
        }
        let probe_exhausted = svc1.requests + 1 >= self.config.probe;
        self.report.details.insert(
            "d".into(),
            json!({
                "service": m.figures.to_json(),
                "serviceStatuses": m.statuses_json(),
                "distinctProvisioned": provisioned,
                "serviceConcurrency1": svc1.to_json(),
                "emulatorCustomersConcurrency1": customers.to_json(),
                "emulatorSubscriptionsConcurrency1": subscriptions.to_json(),
                "pgbenchConcurrency1": db.to_json(),
                "pgbenchStatementLatenciesMs": db.scripts.first().map(|s| s.statements.iter().map(|(ms, cmd)| json!({"ms": ms, "command": cmd.chars().take(120).collect::<String>()})).collect::<Vec<_>>()),
                "dbRoundTripsMs": round(db_ms, 3),
                "emulatorRoundTripsMs": round(emu_ms, 3),
                "debugLogRowsPerInsert": debug_log_batch(&m.statements).map(|b| round(b.rows_per_insert, 2)),
            }),
        );
        self.report.rows.push(Row {
            id: "d".into(),
            title: "first-time provisioning (throughput)".into(),
            concurrency: Some(c),
            rps: Some(m.figures.rps),
            p50_ms: Some(m.figures.p50_ms),
            p99_ms: Some(m.figures.p99_ms),
            p999_ms: Some(m.figures.p999_ms),
            errors: Some(m.errors("200")),
            peak_rss_mib: Some(m.peak_rss_mib),
            cpu_s: Some(m.cpu_s),
            machine_busy: Some(m.machine_busy),
            limit: format!(
                "{} distinct subscriptions provisioned; at {c} connections p50 is queueing ({c} / throughput = {little:.1} ms)",
                provisioned
            ),
            target: "(judged at concurrency 1, next row)".into(),
            ratio: "–".into(),
            pass: None,
        });
        self.report.rows.push(Row {
            id: "d".into(),
            title: "first-time provisioning (latency)".into(),
            concurrency: Some(1),
            rps: (!probe_exhausted).then_some(svc1.rps),
            p50_ms: Some(svc1.p50_ms),
            p99_ms: Some(svc1.p99_ms),
            p999_ms: Some(svc1.p999_ms),
            errors: Some(svc1.socket_errors + svc1.non_2xx),
            limit: format!(
                "round trips at concurrency 1: database {db_ms:.2} ms (pgbench, {} statements, critical path) + emulator {emu_ms:.2} ms (wrk p50: customer {:.2} + subscription {:.2}) = {floor:.2} ms",
                sql.len(),
                customers.p50_ms,
                subscriptions.p50_ms
            ),
            target: format!("p50 ≤ limit + {TARGET_LATENCY_MARGIN_MS:.0} ms"),
            ratio: format!("{margin:+.2} ms"),
            pass: Some(margin <= TARGET_LATENCY_MARGIN_MS),
            ..Row::default()
        });
        if let Some(table) = self.statement_table("d", &m, None, 0.0) {
            self.report.statement_tables.push(table);
        }
        Ok(())
    }

    // ----- (e) ---------------------------------------------------------------------------

    fn scenario_e(&mut self) -> anyhow::Result<()> {
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

/// Debug-log rows and INSERT statements in a pg_stat_statements snapshot.
#[derive(Debug, Clone, Copy)]
struct Batch {
    rows: u64,
    calls: u64,
    rows_per_insert: f64,
}

fn debug_log_batch(statements: &[Statement]) -> Option<Batch> {
    let (rows, calls) = statements
        .iter()
        .filter(|s| s.query.starts_with("INSERT INTO \"debug_logs\""))
        .fold((0, 0), |(r, c), s| (r + s.rows, c + s.calls));
    (calls > 0).then(|| Batch {
        rows,
        calls,
        rows_per_insert: rows as f64 / calls as f64,
    })
}

/// Waits for a 200 on `path` (at most 30 s), failing early if the process died.
fn wait_http(addr: SocketAddr, path: &str, daemon: &Daemon) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http::get(addr, path, Duration::from_secs(2))
            && r.status == 200
        {
            return Ok(());
        }
        if !daemon.alive() || Instant::now() > deadline {
            bail!(
                "{} did not become ready on {addr}{path}: {}",
                daemon.name,
                daemon.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until something accepts connections on `addr` (at most 30 s).
fn wait_port(addr: SocketAddr, daemon: &Daemon) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if !daemon.alive() || Instant::now() > deadline {
            bail!(
                "{} did not listen on {addr}: {}",
                daemon.name,
                daemon.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
