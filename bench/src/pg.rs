//! PostgreSQL for the benchmark: a throwaway cluster (adapters-db's test-support `Cluster`,
//! set up for measuring) or `BENCH_DATABASE_URL`, psql, seeding, pg_stat_statements and the
//! statement capture.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, anyhow};
use onboarding_adapters_db::test_support::{Cluster, ClusterOptions, find_bin_dir, with_database};

use crate::config::Config;
use crate::procs;

pub const BENCH_DB: &str = "onboarding_bench";

/// Settings of the throwaway cluster. Durability stays at PostgreSQL's defaults (fsync,
/// synchronous_commit, full_page_writes on): commits cost what they cost in production.
const CLUSTER_SETTINGS: &[&str] = &[
    "shared_buffers=256MB",
    "shared_preload_libraries=pg_stat_statements",
    "pg_stat_statements.track=top",
    "log_min_messages=warning",
    "log_line_prefix=%m [%p] ",
];

pub struct Postgres {
    /// The benchmark's database.
    pub url: String,
    /// Where `CREATE DATABASE` goes.
    pub admin_url: String,
    pub bin_dir: PathBuf,
    pub version: String,
    /// pg_stat_statements is loaded: statement counts can be read.
    pub pgss: bool,
    /// The throwaway cluster, when the benchmark started one.
    cluster: Option<Cluster>,
    work: PathBuf,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Wait for the throwaway cluster to stop, so that nothing of it runs during the report.
        if let Some(cluster) = self.cluster.take() {
            cluster.stop();
        }
    }
}

/// The newest PostgreSQL bin directory holding `needed` (PG_BIN_DIR wins).
fn bin_dir_with(needed: &[&str]) -> anyhow::Result<PathBuf> {
    find_bin_dir(needed).map_err(|e| anyhow!("{e} (bench/run.sh installs it)"))
}

impl Postgres {
    pub fn start(config: &Config, work: &Path) -> anyhow::Result<Self> {
        match &config.database_url {
            Some(url) => Self::external(url, work),
            None => Self::throwaway(work),
        }
    }

    fn external(url: &str, work: &Path) -> anyhow::Result<Self> {
        let bin_dir = bin_dir_with(&["pgbench", "psql"])?;
        let mut pg = Self {
            url: with_database(url, BENCH_DB),
            admin_url: url.to_owned(),
            bin_dir,
            version: String::new(),
            pgss: false,
            cluster: None,
            work: work.to_owned(),
        };
        pg.create_database()?;
        Ok(pg)
    }

    fn throwaway(work: &Path) -> anyhow::Result<Self> {
        let bin_dir = bin_dir_with(&["initdb", "postgres", "pgbench", "psql"])?;
        let options = CLUSTER_SETTINGS.iter().fold(
            ClusterOptions::default().durable().bin_dir(&bin_dir),
            |options, setting| options.setting(setting),
        );
        // The cluster's start-up is async; the benchmark is not.
        let cluster = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start a runtime to start PostgreSQL")?
            .block_on(Cluster::start_with(options))
            .map_err(|e| anyhow!("the throwaway PostgreSQL did not start: {e}"))?;
        let admin_url = cluster.url("127.0.0.1", "");
        let mut pg = Self {
            url: with_database(&admin_url, BENCH_DB),
            admin_url,
            bin_dir,
            version: String::new(),
            pgss: false,
            cluster: Some(cluster),
            work: work.to_owned(),
        };
        pg.create_database()?;
        Ok(pg)
    }

    fn create_database(&mut self) -> anyhow::Result<()> {
        let admin = self.admin_url.clone();
        self.query_on(
            &admin,
            &format!("DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"),
        )?;
        self.query_on(&admin, &format!("CREATE DATABASE {BENCH_DB}"))?;
        self.version = self.query("SHOW server_version")?.trim().to_owned();
        self.pgss = self
            .query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .and_then(|_| self.query("SELECT count(*) FROM pg_stat_statements"))
            .is_ok();
        Ok(())
    }

    fn psql(&self) -> Command {
        let mut c = Command::new(self.bin_dir.join("psql"));
        c.env("PGCONNECT_TIMEOUT", "5")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-F", "\u{1f}", "-R", "\u{1e}"]);
        c
    }

    fn query_on(&self, url: &str, sql: &str) -> anyhow::Result<String> {
        let mut c = self.psql();
        c.arg("-d").arg(url).arg("-c").arg(sql);
        procs::run_ok(&mut c, Duration::from_secs(600), "psql")
    }

    /// One statement on the benchmark database; rows separated by \x1e, fields by \x1f.
    pub fn query(&self, sql: &str) -> anyhow::Result<String> {
        self.query_on(&self.url, sql)
    }

    /// A script of several statements (run from a file, so VACUUM and friends work).
    pub fn script(&self, name: &str, sql: &str) -> anyhow::Result<()> {
        let path = self.work.join(format!("{name}.sql"));
        std::fs::write(&path, sql)?;
        let mut c = self.psql();
        c.arg("-d").arg(&self.url).arg("-f").arg(&path);
        procs::run_ok(&mut c, Duration::from_secs(900), name)?;
        Ok(())
    }

    pub fn count(&self, sql: &str) -> anyhow::Result<u64> {
        self.query(sql)?
            .trim_matches(|c: char| c.is_whitespace() || c == '\u{1e}')
            .parse()
            .with_context(|| format!("not a count: {sql}"))
    }

    /// Seeds `orgs` organizations with one trialing subscription each, plan codes cycling
    /// through the catalog, and marks the first `replay` as provisioned (rows written directly,
    /// as the service would have left them).
    pub fn seed(&self, config: &Config, plans: &[String]) -> anyhow::Result<()> {
        let w = config.width();
        let plan_array = plans
            .iter()
            .map(|p| format!("'{p}'"))
            .collect::<Vec<_>>()
            .join(",");
        let n = config.orgs;
        let r = config.replay;
        let sql = format!(
            r"
INSERT INTO organizations (id, name, tenant_id, stripe_customer_id)
SELECT 'org_b' || lpad(n::text, {w}, '0'), 'Bench org ' || n, NULL, 'cus_B' || lpad(n::text, {w}, '0')
FROM generate_series(1, {n}) AS n;

INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
SELECT 's_b' || lpad(n::text, {w}, '0'), 'org_b' || lpad(n::text, {w}, '0'), 'sub_B' || lpad(n::text, {w}, '0'),
       (ARRAY[{plan_array}])[((n - 1) % {plans}) + 1], 'trialing',
       date_trunc('second', now() AT TIME ZONE 'utc') + interval '30 days'
FROM generate_series(1, {n}) AS n;

INSERT INTO stigg_customer_provisions (organization_id, stigg_customer_id, billing_id, provisioned_at)
SELECT 'org_b' || lpad(n::text, {w}, '0'), 'org_b' || lpad(n::text, {w}, '0'), 'cus_B' || lpad(n::text, {w}, '0'),
       now() AT TIME ZONE 'utc'
FROM generate_series(1, {r}) AS n;

INSERT INTO stigg_subscription_provisions
    (stripe_subscription_id, organization_id, stigg_customer_id, stigg_subscription_id, provisioned_at, attempts, updated_at)
SELECT 'sub_B' || lpad(n::text, {w}, '0'), 'org_b' || lpad(n::text, {w}, '0'), 'org_b' || lpad(n::text, {w}, '0'),
       'sub_B' || lpad(n::text, {w}, '0'), now() AT TIME ZONE 'utc', 1, now() AT TIME ZONE 'utc'
FROM generate_series(1, {r}) AS n;

VACUUM ANALYZE;
CHECKPOINT;
",
            plans = plans.len()
        );
        self.script("seed", &sql)
    }

    pub fn checkpoint(&self) -> anyhow::Result<()> {
        self.query("CHECKPOINT").map(|_| ())
    }

    pub fn reset_statements(&self) -> anyhow::Result<()> {
        if self.pgss {
            self.query("SELECT pg_stat_statements_reset()")?;
        }
        Ok(())
    }

    /// Statements run on the benchmark database since the last reset.
    pub fn statements(&self) -> anyhow::Result<Vec<Statement>> {
        if !self.pgss {
            return Ok(Vec::new());
        }
        let raw = self.query(
            "SELECT calls, rows, total_exec_time, query FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND query NOT LIKE '%pg_stat_statements%'",
        )?;
        Ok(raw
            .split('\u{1e}')
            .filter_map(|row| {
                let mut f = row.split('\u{1f}');
                let calls = f.next()?.trim().parse().ok()?;
                let rows = f.next()?.trim().parse().ok()?;
                let total_ms = f.next()?.trim().parse().ok()?;
                let query = f.collect::<Vec<_>>().join("\u{1f}");
                Some(Statement {
                    calls,
                    rows,
                    total_ms,
                    query,
                })
            })
            .collect())
    }

    /// Turns `log_statement = all` on or off (throwaway cluster only).
    pub fn log_all_statements(&self, on: bool) -> anyhow::Result<()> {
        let set = if on {
            "ALTER SYSTEM SET log_statement = 'all'"
        } else {
            "ALTER SYSTEM RESET log_statement"
        };
        self.query(set)?;
        self.query("SELECT pg_reload_conf()")?;
        // Backends apply the reload before their next statement; let the signal land.
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    pub fn log_path(&self) -> Option<PathBuf> {
        self.cluster.as_ref().map(Cluster::log_path)
    }

    pub fn pgbench(&self) -> PathBuf {
        self.bin_dir.join("pgbench")
    }
}

/// One row of pg_stat_statements.
#[derive(Debug, Clone)]
pub struct Statement {
    pub calls: u64,
    pub rows: u64,
    pub total_ms: f64,
    pub query: String,
}

/// The statements of the server log between two markers (`SELECT 'bench-mark:<name>'`), as
/// logged with `log_statement = all`: `execute <name>: SQL` for the extended protocol.
pub fn statements_between(log: &str, start: &str, end: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in log.lines() {
        if line.contains(start) {
            inside = true;
            continue;
        }
        if line.contains(end) {
            break;
        }
        if !inside {
            continue;
        }
        let Some((_, text)) = line.split_once("LOG:  ") else {
            continue;
        };
        let sql = if let Some(rest) = text.strip_prefix("execute ") {
            rest.split_once(": ").map(|(_, sql)| sql)
        } else {
            text.strip_prefix("statement: ")
        };
        if let Some(sql) = sql {
            out.push(sql.trim().to_owned());
        }
    }
    out
}

/// A statement's shape: parameters (`$1`, `:name`), literals, NULLs and the scripts' key
/// expressions become `?`, and a
/// multi-row VALUES list keeps its first row, so that the service's and pgbench's versions
/// of the same statement compare equal.
pub fn shape(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let chars: Vec<char> = sql.trim().trim_end_matches(';').chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if (c == '$' || c == ':')
            && chars
                .get(i + 1)
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '_')
            && !(c == ':' && chars.get(i + 1) == Some(&':'))
            && !(c == ':' && i > 0 && chars[i - 1] == ':')
        {
            i += 1;
            while chars
                .get(i)
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '_')
            {
                i += 1;
            }
            out.push('?');
            continue;
        }
        if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push('?');
            continue;
        }
        out.push(c);
        i += 1;
    }
    // The pgbench scripts build text keys inside the statement (pgbench variables are
    // numbers only): `'org_b' || lpad(:n::text, :width, '0')` stands for one bound parameter.
    let out = out
        .replace("NULL", "?")
        .replace("? || lpad(?::text, ?, ?)", "?");
    // Keep the first VALUES row only.
    match out.find("VALUES (") {
        Some(at) => {
            let after = &out[at..];
            match after.find("), (") {
                Some(end) => {
                    let tail_start = after[end..]
                        .find(") ON CONFLICT")
                        .map(|t| at + end + t + 1)
                        .unwrap_or(out.len());
                    format!("{}){}", &out[..at + end], &out[tail_start..])
                }
                None => out,
            }
        }
        None => out,
    }
}

/// What a statement is, for the per-request tables: the connection check of a checkout, the
/// debug-log insert, or its shape.
pub fn kind(sql: &str) -> String {
    let s = shape(sql);
    let upper = s.to_ascii_uppercase();
    if upper.starts_with("SELECT") && !upper.contains(" FROM ") {
        return "SELECT $1 (connection check on checkout)".to_owned();
    }
    if upper.starts_with("INSERT INTO \"DEBUG_LOGS\"") {
        return "INSERT INTO debug_logs … (one row per request, batched)".to_owned();
    }
    if upper.starts_with("SET ") {
        return "SET … (new connection)".to_owned();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_across_parameter_styles() {
        assert_eq!(
            shape("SELECT a FROM t WHERE (t.id = $1) LIMIT $2"),
            shape("SELECT a FROM t WHERE (t.id = :org) LIMIT :one;")
        );
        assert_eq!(
            shape("INSERT INTO \"d\" (a, b) VALUES ($1, $2), ($3, $4)"),
            shape("INSERT INTO \"d\" (a, b) VALUES (:x, NULL)")
        );
        assert_eq!(shape("SELECT :n::text"), "SELECT ?::text");
        assert_eq!(
            shape("SELECT a FROM t WHERE (t.id = $1) LIMIT $2"),
            shape(
                "SELECT a FROM t WHERE (t.id = 'org_b' || lpad(:n::text, :width, '0')) LIMIT :one"
            )
        );
    }

    #[test]
    fn kinds() {
        assert!(kind("SELECT $1").starts_with("SELECT $1"));
        assert!(
            kind("SELECT 'org_b' || lpad(:n::text, :width, '0') AS org").starts_with("SELECT $1")
        );
        assert!(
            kind("INSERT INTO \"debug_logs\" (\"a\") VALUES ($1), ($2)")
                .starts_with("INSERT INTO debug_logs")
        );
    }

    #[test]
    fn log_extraction() {
        let log = "x LOG:  statement: SELECT 'bench-mark:a'\n\
                   x LOG:  execute s1: SELECT $1\n\
                   x DETAIL:  parameters: $1 = '1'\n\
                   x LOG:  statement: SELECT 'bench-mark:end-a'\n";
        assert_eq!(
            statements_between(log, "bench-mark:a'", "bench-mark:end-a'"),
            vec!["SELECT $1".to_owned()]
        );
    }
}
