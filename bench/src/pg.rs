//! PostgreSQL for the benchmark: a throwaway cluster (or `BENCH_DATABASE_URL`), psql,
//! seeding, pg_stat_statements and the statement capture.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::config::Config;
use crate::procs::{self, Daemon};

pub const BENCH_DB: &str = "onboarding_bench";

/// Settings of the throwaway cluster. Durability stays at PostgreSQL's defaults (fsync,
/// synchronous_commit, full_page_writes on): commits cost what they cost in production.
const CLUSTER_SETTINGS: &[&str] = &[
    "max_connections=300",
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
    pub cluster: Option<Cluster>,
    pub work: PathBuf,
}

pub struct Cluster {
    pub dir: PathBuf,
    pub log: PathBuf,
    daemon: Option<Daemon>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.stop(Duration::from_secs(20));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest PostgreSQL bin directory holding `needed` (PG_BIN_DIR wins).
pub fn find_bin_dir(needed: &[&str]) -> anyhow::Result<PathBuf> {
    let has = |dir: &Path| needed.iter().all(|b| dir.join(b).is_file());
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        return if has(&dir) {
            Ok(dir)
        } else {
            bail!("PG_BIN_DIR={} lacks one of {needed:?}", dir.display())
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).with_context(|| {
        format!("no PostgreSQL bin directory with {needed:?} (bench/run.sh installs it)")
    })
}

fn as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn runuser() -> &'static str {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("runuser")
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_path(&format!("/{name}"));
            parsed.into()
        }
        // Not a URL: nothing to replace.
        Err(_) => url.to_owned(),
    }
}

impl Postgres {
    pub fn start(config: &Config, work: &Path) -> anyhow::Result<Self> {
        match &config.database_url {
            Some(url) => Self::external(url, work),
            None => Self::throwaway(work),
        }
    }

    fn external(url: &str, work: &Path) -> anyhow::Result<Self> {
        let bin_dir = find_bin_dir(&["pgbench", "psql"])?;
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
        let bin_dir = find_bin_dir(&["initdb", "postgres", "pgbench", "psql"])?;
        let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S");
        let dir = std::env::temp_dir().join(format!(
            "onboarding-bench-pg-{stamp}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        let root = as_root();
        let prefix: Vec<&str> = if root {
            procs::run_ok(
                Command::new("chown").arg("postgres:postgres").arg(&dir),
                Duration::from_secs(10),
                "chown of the cluster directory",
            )?;
            vec![runuser(), "-u", "postgres", "--"]
        } else {
            Vec::new()
        };
        let data = dir.join("data");
        let mut initdb = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin_dir.join("initdb"));
                c
            }
            None => Command::new(bin_dir.join("initdb")),
        };
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        procs::run_ok(&mut initdb, Duration::from_secs(120), "initdb")?;
        let port = procs::free_port()?;
        let log = dir.join("postgres.log");
        let mut args = vec![
            "-D".to_owned(),
            data.display().to_string(),
            "-p".to_owned(),
            port.to_string(),
            "-k".to_owned(),
            dir.display().to_string(),
            "-h".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        for setting in CLUSTER_SETTINGS {
            args.push("-c".to_owned());
            args.push((*setting).to_owned());
        }
        let daemon = Daemon::start(
            "postgres",
            &prefix,
            "INT",
            &bin_dir.join("postgres"),
            &args,
            &[],
            &log,
            &dir,
        )?;
        let admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let mut pg = Self {
            url: with_database(&admin_url, BENCH_DB),
            admin_url,
            bin_dir,
            version: String::new(),
            pgss: false,
            cluster: Some(Cluster {
                dir,
                log,
                daemon: Some(daemon),
            }),
            work: work.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match pg.query_on(&pg.admin_url, "SELECT 1") {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    let log = pg
                        .cluster
                        .as_ref()
                        .map(|c| procs::tail(&c.log, 20))
                        .unwrap_or_default();
                    bail!("the throwaway PostgreSQL did not start: {e:#}\n{log}");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
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

    pub fn log_path(&self) -> Option<&Path> {
        self.cluster.as_ref().map(|c| c.log.as_path())
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
