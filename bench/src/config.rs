//! The benchmark's settings: environment variables with defaults sized for a ~10 minute run
//! on a 2-core machine.

use std::path::PathBuf;

use anyhow::{Context, bail};

#[derive(Debug, Clone)]
pub struct Config {
    /// Repository root (the working directory of `just bench`).
    pub root: PathBuf,
    /// Where the release binaries are.
    pub bin_dir: PathBuf,
    /// `bench/out`: one JSON and one Markdown report per run, plus logs.
    pub out_dir: PathBuf,
    /// The page rewritten with the latest figures (empty: do not write it).
    pub docs: Option<PathBuf>,
    /// Open connections of the load generator (and pgbench clients).
    pub concurrency: u32,
    /// wrk / pgbench threads.
    pub threads: u32,
    /// Measured seconds per run.
    pub duration_s: u32,
    /// Unmeasured seconds before each measured run.
    pub warmup_s: u32,
    /// Organizations (and subscriptions, one each) seeded.
    pub orgs: u64,
    /// Subscriptions seeded as already provisioned (scenario c).
    pub replay: u64,
    /// Subscriptions left pending for `reconcile` (scenario e).
    pub reconcile: u64,
    /// The backlog the three `reconcile` runs of scenario h share.
    pub shared_reconcile: u64,
    /// Most first-time provisionings in the measured run of scenario d.
    pub first_time: u64,
    /// Most requests of each concurrency-1 latency probe.
    pub probe: u64,
    /// Seconds of each concurrency-1 latency probe (it may end sooner: `probe` requests).
    pub probe_s: u32,
    /// Stigg quota of scenarios e and h, calls per minute per operation.
    pub quota_per_minute: u32,
    /// `reconcile --concurrency`.
    pub reconcile_concurrency: u32,
    /// Start-up measurements on SQLite (median reported).
    pub startup_runs: u32,
    /// The service's database pool size (pgbench runs at this client count too).
    pub db_pool: u32,
    /// Signed events pre-generated for scenario f's measured run (its warm-up gets a quarter
    /// as many more); each is sent once.
    pub webhook_events: u64,
    /// Scenario g: Stripe changes per second, measured seconds, subscriptions changed in turn.
    pub sync_rate: u32,
    pub sync_duration_s: u32,
    pub sync_subscriptions: u64,
    /// A server to use instead of a throwaway cluster.
    pub database_url: Option<String>,
    /// Scenarios to run (`startup,a,b,c,d,f,g,e,h`).
    pub scenarios: Vec<String>,
    /// `perf record` the service during each measured run (skews the figures).
    pub profile: bool,
    /// Extra environment of the service and reconcile processes (`BENCH_SERVICE_ENV`,
    /// `NAME=value` pairs separated by spaces), for trying settings.
    pub service_env: Vec<(String, String)>,
}

fn env_u64(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .with_context(|| format!("{name} must be a whole number, not {raw:?}")),
        _ => Ok(default),
    }
}

fn env_u32(name: &str, default: u32) -> anyhow::Result<u32> {
    let value = env_u64(name, u64::from(default))?;
    u32::try_from(value).with_context(|| format!("{name} is too large"))
}

fn env_string(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

pub const ALL_SCENARIOS: [&str; 9] = ["startup", "a", "b", "c", "d", "f", "g", "e", "h"];

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let root = std::env::current_dir().context("no working directory")?;
        if !root.join("bench/wrk/provision.lua").is_file() {
            bail!(
                "run the benchmark from the repository root (`just bench` or `bash bench/run.sh`)"
            );
        }
        let bin_dir = env_string("BENCH_BIN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/release"));
        let out_dir = env_string("BENCH_OUT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("bench/out"));
        let docs = match env_string("BENCH_WRITE_DOCS").as_deref() {
            Some("0" | "false" | "no") => None,
            _ => Some(root.join("docs/benchmarks.md")),
        };
        let scenarios = match env_string("BENCH_SCENARIOS") {
            None => ALL_SCENARIOS.iter().map(|s| (*s).to_owned()).collect(),
            Some(list) => {
                let picked: Vec<String> = list.split(',').map(|s| s.trim().to_owned()).collect();
                if let Some(bad) = picked.iter().find(|s| !ALL_SCENARIOS.contains(&s.as_str())) {
                    bail!("BENCH_SCENARIOS: unknown scenario {bad:?} (known: {ALL_SCENARIOS:?})");
                }
                picked
            }
        };
        let config = Self {
            root,
            bin_dir,
            out_dir,
            docs,
            concurrency: env_u32("BENCH_CONCURRENCY", 64)?,
            threads: env_u32("BENCH_THREADS", 2)?,
            duration_s: env_u32("BENCH_DURATION", 15)?,
            warmup_s: env_u32("BENCH_WARMUP", 3)?,
            orgs: env_u64("BENCH_ORGS", 100_000)?,
            replay: env_u64("BENCH_REPLAY", 10_000)?,
            reconcile: env_u64("BENCH_RECONCILE", 10_000)?,
            shared_reconcile: env_u64("BENCH_SHARED_RECONCILE", 3_000)?,
            first_time: env_u64("BENCH_FIRST_TIME", 30_000)?,
            probe: env_u64("BENCH_PROBE", 2_000)?,
            probe_s: env_u32("BENCH_PROBE_DURATION", 5)?,
            quota_per_minute: env_u32("BENCH_QUOTA", 6_000)?,
            reconcile_concurrency: env_u32("BENCH_RECONCILE_CONCURRENCY", 4)?,
            startup_runs: env_u32("BENCH_STARTUP_RUNS", 7)?,
            db_pool: env_u32("BENCH_DB_POOL", 16)?,
            webhook_events: env_u64("BENCH_WEBHOOK_EVENTS", 120_000)?,
            sync_rate: env_u32("BENCH_SYNC_RATE", 50)?,
            sync_duration_s: env_u32("BENCH_SYNC_DURATION", 25)?,
            sync_subscriptions: env_u64("BENCH_SYNC_SUBSCRIPTIONS", 250)?,
            database_url: env_string("BENCH_DATABASE_URL"),
            scenarios,
            profile: env_string("BENCH_PROFILE").is_some_and(|v| v == "1"),
            service_env: match env_string("BENCH_SERVICE_ENV") {
                None => Vec::new(),
                Some(list) => list
                    .split_whitespace()
                    .map(|pair| {
                        pair.split_once('=')
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .with_context(|| {
                                format!("BENCH_SERVICE_ENV: {pair:?} is not NAME=value")
                            })
                    })
                    .collect::<anyhow::Result<_>>()?,
            },
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.concurrency == 0 || self.threads == 0 || self.concurrency < self.threads {
            bail!("BENCH_CONCURRENCY must be at least BENCH_THREADS (both above 0)");
        }
        if self.duration_s == 0 || self.probe_s == 0 {
            bail!("BENCH_DURATION and BENCH_PROBE_DURATION must be above 0");
        }
        if self.webhook_events == 0
            || self.sync_rate == 0
            || self.sync_duration_s == 0
            || self.sync_subscriptions == 0
        {
            bail!(
                "BENCH_WEBHOOK_EVENTS, BENCH_SYNC_RATE, BENCH_SYNC_DURATION and BENCH_SYNC_SUBSCRIPTIONS must be above 0"
            );
        }
        if self.quota_per_minute == 0 || self.shared_reconcile == 0 {
            bail!("BENCH_QUOTA and BENCH_SHARED_RECONCILE must be above 0");
        }
        if !(1..=32).contains(&self.reconcile_concurrency) {
            bail!("BENCH_RECONCILE_CONCURRENCY must be 1 to 32 (the command's range)");
        }
        let needed = self.ranges().end;
        if needed > self.orgs + 1 {
            bail!(
                "BENCH_ORGS={} is too small: the scenarios need {} distinct subscriptions",
                self.orgs,
                needed - 1
            );
        }
        Ok(())
    }

    pub fn runs(&self, scenario: &str) -> bool {
        self.scenarios.iter().any(|s| s == scenario)
    }

    /// Width of the zero-padded number in the seeded ids (`org_b000001`).
    pub fn width(&self) -> usize {
        self.orgs.to_string().len().max(6)
    }

    /// Which seeded subscription numbers each part of the run uses; no two parts share one.
    pub fn ranges(&self) -> Ranges {
        let replay = 1..self.replay + 1;
        let reconcile = replay.end..replay.end + self.reconcile;
        let shared = reconcile.end..reconcile.end + self.shared_reconcile;
        let capture = shared.end;
        let warmup_count = (self.first_time / 10).clamp(1, 2_000);
        let warmup = capture + 1..capture + 1 + warmup_count;
        let first_time = warmup.end..warmup.end + self.first_time;
        let service_probe = first_time.end..first_time.end + self.probe;
        let db_probe = service_probe.end..service_probe.end + self.probe;
        Ranges {
            replay,
            reconcile,
            shared,
            capture,
            warmup,
            first_time,
            service_probe,
            end: db_probe.end,
            db_probe,
        }
    }
}

/// Half-open ranges of seeded numbers (`n` in `sub_B{n}`).
#[derive(Debug, Clone)]
pub struct Ranges {
    /// Pre-provisioned by SQL: scenario c replays them.
    pub replay: std::ops::Range<u64>,
    /// Left pending, first in key order: `reconcile --limit` takes exactly these.
    pub reconcile: std::ops::Range<u64>,
    /// Left pending, next in key order: after scenario e, scenario h's shared backlog.
    pub shared: std::ops::Range<u64>,
    /// One subscription provisioned while the statements are captured.
    pub capture: u64,
    /// Scenario d's warm-up.
    pub warmup: std::ops::Range<u64>,
    /// Scenario d's measured run.
    pub first_time: std::ops::Range<u64>,
    /// Scenario d's concurrency-1 latency probe of the service.
    pub service_probe: std::ops::Range<u64>,
    /// Scenario d's concurrency-1 pgbench run of the same SQL.
    pub db_probe: std::ops::Range<u64>,
    /// One past the last number used.
    pub end: u64,
}
