//! The run's figures as JSON and Markdown, and the generated part of docs/benchmarks.md.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use crate::wrk::round;

/// One line of the main table.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub id: String,
    pub title: String,
    pub concurrency: Option<u32>,
    pub rps: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub errors: Option<u64>,
    pub peak_rss_mib: Option<f64>,
    pub cpu_s: Option<f64>,
    /// Share of the machine's CPUs busy during the measured run (everything on it).
    pub machine_busy: Option<f64>,
    /// The limit measured in the same run, in words and figures.
    pub limit: String,
    pub target: String,
    /// The figure the target is checked on (a ratio, or a margin).
    pub ratio: String,
    pub pass: Option<bool>,
}

impl Row {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "concurrency": self.concurrency,
            "rps": self.rps.map(|v| round(v, 1)),
            "p50Ms": self.p50_ms.map(|v| round(v, 3)),
            "p99Ms": self.p99_ms.map(|v| round(v, 3)),
            "p999Ms": self.p999_ms.map(|v| round(v, 3)),
            "errors": self.errors,
            "peakRssMiB": self.peak_rss_mib.map(|v| round(v, 1)),
            "cpuSeconds": self.cpu_s.map(|v| round(v, 2)),
            "machineBusyPercent": self.machine_busy.map(|v| round(v, 1)),
            "limit": self.limit,
            "target": self.target,
            "ratio": self.ratio,
            "pass": self.pass,
        })
    }
}

/// Per-request statement counts of one scenario, the service's next to pgbench's.
#[derive(Debug, Clone, Default)]
pub struct StatementTable {
    pub scenario: String,
    /// (statement, service calls per request, pgbench calls per request-equivalent, service
    /// mean execution ms)
    pub rows: Vec<(String, f64, Option<f64>, f64)>,
    pub note: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub started: String,
    pub wall_s: f64,
    pub machine: Value,
    pub tools: Value,
    pub settings: Value,
    pub rows: Vec<Row>,
    pub statement_tables: Vec<StatementTable>,
    /// Captured at concurrency 1 with `log_statement = all`, per path.
    pub captured: Vec<(String, Vec<String>)>,
    pub notes: Vec<String>,
    pub details: serde_json::Map<String, Value>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

pub fn rate(v: f64) -> String {
    thousands(v)
}

impl Report {
    pub fn to_json(&self) -> Value {
        json!({
            "started": self.started,
            "wallSeconds": round(self.wall_s, 1),
            "machine": self.machine,
            "tools": self.tools,
            "settings": self.settings,
            "results": self.rows.iter().map(Row::to_json).collect::<Vec<_>>(),
            "statementsPerRequest": self.statement_tables.iter().map(|t| json!({
                "scenario": t.scenario,
                "note": t.note,
                "statements": t.rows.iter().map(|(s, svc, pgb, ms)| json!({
                    "statement": s,
                    "service": round(*svc, 3),
                    "pgbench": pgb.map(|v| round(v, 3)),
                    "serviceMeanExecMs": round(*ms, 4),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "captured": self.captured.iter().map(|(path, sql)| json!({"path": path, "statements": sql})).collect::<Vec<_>>(),
            "notes": self.notes,
            "details": Value::Object(self.details.clone()),
        })
    }

    /// The Markdown of the figures (the generated part of docs/benchmarks.md, and the
    /// per-run .md file).
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let t = &self.tools;
        let _ = writeln!(
            md,
            "Run of {} (UTC), {:.0} s wall time in all.",
            self.started, self.wall_s
        );
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "Machine: {} × {} ({} logical CPUs), {} GiB RAM, Linux {} ({}); {:.0} % of the CPUs busy in the 3 s before the start. \
             {}; PostgreSQL {}; {}; {}. Service, PostgreSQL, emulator and load generator share the machine.",
            m["cpus"],
            m["cpu"].as_str().unwrap_or("?"),
            m["cpus"],
            m["memoryGiB"],
            m["kernel"].as_str().unwrap_or("?"),
            m["os"].as_str().unwrap_or("?"),
            m["busyPercentBeforeStart"].as_f64().unwrap_or(0.0),
            m["rustc"].as_str().unwrap_or("?"),
            t["postgres"].as_str().unwrap_or("?"),
            t["pgbench"].as_str().unwrap_or("?"),
            t["wrk"].as_str().unwrap_or("?"),
        );
        let _ = writeln!(md);
        let s = &self.settings;
        let _ = writeln!(
            md,
            "Settings: {} connections, {} s measured after {} s warm-up per run, {} wrk/pgbench threads; \
             {} organizations and subscriptions seeded; service pool {} connections; \
             actix-web workers: default ({}).",
            s["concurrency"],
            s["durationS"],
            s["warmupS"],
            s["threads"],
            s["orgs"],
            s["dbPool"],
            m["cpus"]
        );
        if let Some(extra) = s["serviceEnv"].as_array().filter(|a| !a.is_empty()) {
            let _ = writeln!(md);
            let extra: Vec<&str> = extra.iter().filter_map(Value::as_str).collect();
            let _ = writeln!(
                md,
                "Extra service environment (BENCH_SERVICE_ENV): {}.",
                extra.join(" ")
            );
        }
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "| scenario | conc. | req/s | p50 ms | p99 ms | p99.9 ms | errors | peak RSS MiB | CPU s | machine busy | limit (same run) | target | measured | pass |"
        );
        let _ = writeln!(
            md,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | :---: |"
        );
        for r in &self.rows {
            let _ = writeln!(
                md,
                "| {} {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.id,
                r.title,
                r.concurrency
                    .map_or_else(|| "–".to_owned(), |c| c.to_string()),
                r.rps.map_or_else(|| "–".to_owned(), thousands),
                opt(r.p50_ms, 2),
                opt(r.p99_ms, 2),
                opt(r.p999_ms, 2),
                r.errors.map_or_else(|| "–".to_owned(), |e| e.to_string()),
                opt(r.peak_rss_mib, 1),
                opt(r.cpu_s, 1),
                r.machine_busy
                    .map_or_else(|| "–".to_owned(), |b| format!("{b:.0} %")),
                r.limit,
                r.target,
                r.ratio,
                match r.pass {
                    Some(true) => "pass",
                    Some(false) => "**miss**",
                    None => "–",
                }
            );
        }
        let _ = writeln!(md);
        if !self.notes.is_empty() {
            for note in &self.notes {
                let _ = writeln!(md, "- {note}");
            }
            let _ = writeln!(md);
        }
        for table in &self.statement_tables {
            let _ = writeln!(
                md,
                "Statements per request, scenario {} (pg_stat_statements over the measured run). {}",
                table.scenario, table.note
            );
            let _ = writeln!(md);
            let _ = writeln!(
                md,
                "| statement | service | pgbench | service mean exec ms |"
            );
            let _ = writeln!(md, "| --- | ---: | ---: | ---: |");
            for (statement, svc, pgb, ms) in &table.rows {
                let statement = statement.replace('|', "\\|");
                let shown = if statement.chars().count() > 110 {
                    format!("{}…", statement.chars().take(110).collect::<String>())
                } else {
                    statement
                };
                let _ = writeln!(
                    md,
                    "| `{shown}` | {svc:.3} | {} | {ms:.4} |",
                    pgb.map_or_else(|| "–".to_owned(), |v| format!("{v:.3}"))
                );
            }
            let _ = writeln!(md);
        }
        if !self.captured.is_empty() {
            let _ = writeln!(
                md,
                "<details><summary>SQL of one request per path, captured with <code>log_statement = all</code> in this run</summary>"
            );
            let _ = writeln!(md);
            for (path, statements) in &self.captured {
                let _ = writeln!(md, "Scenario {path}:");
                let _ = writeln!(md);
                let _ = writeln!(md, "```sql");
                for sql in statements {
                    let _ = writeln!(md, "{sql}");
                }
                let _ = writeln!(md, "```");
                let _ = writeln!(md);
            }
            let _ = writeln!(md, "</details>");
            let _ = writeln!(md);
        }
        md
    }
}

pub const BEGIN: &str =
    "<!-- bench:begin (generated by `just bench`; edit outside these markers) -->";
pub const END: &str = "<!-- bench:end -->";

/// Replaces the generated part of docs/benchmarks.md (between the markers), or appends it.
pub fn write_docs(path: &Path, generated: &str) -> anyhow::Result<()> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{BEGIN}\n\n{generated}\n{END}");
    let updated = match (current.find("<!-- bench:begin"), current.find(END)) {
        (Some(start), Some(end)) if end > start => {
            format!(
                "{}{}{}",
                &current[..start],
                block,
                &current[end + END.len()..]
            )
        }
        _ if current.trim().is_empty() => format!("# Benchmarks\n\n{block}\n"),
        _ => format!("{}\n\n{block}\n", current.trim_end()),
    };
    std::fs::write(path, updated).with_context(|| format!("cannot write {}", path.display()))
}
