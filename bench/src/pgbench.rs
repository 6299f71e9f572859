//! The database limits: pgbench running the service's own statements.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::procs;
use crate::wrk::round;

#[derive(Debug, Clone)]
pub struct Run {
    /// (script file, weight)
    pub scripts: Vec<(PathBuf, u32)>,
    pub clients: u32,
    pub threads: u32,
    /// `-T` seconds, or `-t` transactions per client.
    pub length: Length,
    pub defines: Vec<(String, String)>,
    /// `-r`: per-statement latencies.
    pub per_statement: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum Length {
    Seconds(u32),
    Transactions(u64),
}

#[derive(Debug, Clone, Default)]
pub struct ScriptFigures {
    pub name: String,
    pub transactions: u64,
    pub tps: f64,
    /// (average latency in ms, command) per statement, with `-r`.
    pub statements: Vec<(f64, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub clients: u32,
    pub tps: f64,
    pub transactions: u64,
    pub failed: u64,
    pub latency_avg_ms: f64,
    pub scripts: Vec<ScriptFigures>,
}

impl Figures {
    pub fn script(&self, name: &str) -> Option<&ScriptFigures> {
        self.scripts.iter().find(|s| s.name.ends_with(name))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "clients": self.clients,
            "tps": round(self.tps, 1),
            "transactions": self.transactions,
            "failed": self.failed,
            "latencyAvgMs": round(self.latency_avg_ms, 3),
            "scripts": self.scripts.iter().map(|s| json!({
                "script": Path::new(&s.name).file_name().map(|f| f.to_string_lossy().into_owned()),
                "transactions": s.transactions,
                "tps": round(s.tps, 1),
            })).collect::<Vec<_>>(),
        })
    }
}

pub fn version(pgbench: &Path) -> String {
    Command::new(pgbench)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub fn run(pgbench: &Path, url: &str, spec: &Run, log: &Path) -> anyhow::Result<Figures> {
    let mut c = Command::new(pgbench);
    c.env("PGCONNECT_TIMEOUT", "5")
        .args(["-n", "-M", "prepared"])
        .arg("-c")
        .arg(spec.clients.to_string())
        .arg("-j")
        .arg(spec.threads.min(spec.clients).to_string());
    let limit = match spec.length {
        Length::Seconds(s) => {
            c.arg("-T").arg(s.to_string());
            Duration::from_secs(u64::from(s) + 60)
        }
        Length::Transactions(t) => {
            c.arg("-t").arg(t.to_string());
            Duration::from_secs(600)
        }
    };
    if spec.per_statement {
        c.arg("-r");
    }
    for (name, value) in &spec.defines {
        c.arg("-D").arg(format!("{name}={value}"));
    }
    for (script, weight) in &spec.scripts {
        c.arg("-f").arg(format!("{}@{weight}", script.display()));
    }
    c.arg(url);
    let output = procs::run_bounded(&mut c, limit, "pgbench")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    std::fs::write(log, format!("{stdout}\n--- stderr\n{stderr}"))?;
    if !output.status.success() {
        bail!(
            "pgbench failed ({}): {}",
            output.status,
            tail_lines(&stderr, 10)
        );
    }
    let mut figures =
        parse(&stdout).with_context(|| format!("cannot read pgbench's output:\n{stdout}"))?;
    figures.clients = spec.clients;
    if figures.scripts.len() == 1 && spec.scripts.len() == 1 {
        figures.scripts[0].name = spec.scripts[0].0.display().to_string();
    }
    Ok(figures)
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let token: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    token.parse().ok()
}

fn parse(out: &str) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    let mut current: Option<ScriptFigures> = None;
    let mut in_statements = false;
    for line in out.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("SQL script ") {
            if let Some(done) = current.take() {
                figures.scripts.push(done);
            }
            in_statements = false;
            current = Some(ScriptFigures {
                name: name
                    .split_once(": ")
                    .map(|(_, n)| n)
                    .unwrap_or(name)
                    .to_owned(),
                ..ScriptFigures::default()
            });
            continue;
        }
        if trimmed.starts_with("number of transactions actually processed:") {
            figures.transactions = number_after(trimmed, "processed:").unwrap_or(0.0) as u64;
        } else if trimmed.starts_with("number of failed transactions:") && current.is_none() {
            figures.failed = number_after(trimmed, "transactions:").unwrap_or(0.0) as u64;
        } else if trimmed.starts_with("latency average =") && current.is_none() {
            figures.latency_avg_ms = number_after(trimmed, "=").unwrap_or(0.0);
        } else if trimmed.starts_with("tps =") {
            figures.tps = number_after(trimmed, "=").unwrap_or(0.0);
        } else if trimmed.starts_with("- ") && trimmed.contains(" transactions (") {
            if let Some(script) = current.as_mut() {
                script.transactions = number_after(trimmed, "- ").unwrap_or(0.0) as u64;
                script.tps = number_after(trimmed, "tps =").unwrap_or(0.0);
            }
        } else if trimmed.contains("statement latencies in milliseconds") {
            in_statements = true;
            if current.is_none() {
                current = Some(ScriptFigures::default());
            }
        } else if in_statements {
            // "0.123  0  SELECT ..." (latency, failures, command)
            let mut parts = trimmed.splitn(3, char::is_whitespace);
            let latency = parts.next().and_then(|p| p.parse::<f64>().ok());
            let rest = parts.collect::<Vec<_>>().join(" ");
            let command = rest
                .trim_start()
                .split_once(char::is_whitespace)
                .map(|(failures, cmd)| {
                    if failures.parse::<u64>().is_ok() {
                        cmd.trim().to_owned()
                    } else {
                        rest.trim().to_owned()
                    }
                })
                .unwrap_or_else(|| rest.trim().to_owned());
            match (latency, current.as_mut()) {
                (Some(latency), Some(script)) => script.statements.push((latency, command)),
                _ => in_statements = false,
            }
        }
    }
    if let Some(done) = current.take() {
        figures.scripts.push(done);
    }
    if figures.tps <= 0.0 {
        bail!("no tps line");
    }
    // A single script run prints no per-script block: its figures are the run's.
    if let [only] = figures.scripts.as_mut_slice()
        && only.transactions == 0
    {
        only.transactions = figures.transactions;
        only.tps = figures.tps;
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &str = "transaction type: multiple scripts
scaling factor: 1
query mode: prepared
number of clients: 64
number of threads: 2
maximum number of tries: 1
duration: 15 s
number of transactions actually processed: 90000
number of failed transactions: 0 (0.000%)
latency average = 10.667 ms
initial connection time = 40.000 ms
tps = 6000.123456 (without initial connection time)
SQL script 1: /x/lookup.sql
 - weight: 8 (targets 88.9% of total)
 - 80000 transactions (88.9% of total, tps = 5333.4)
 - number of failed transactions: 0 (0.000%)
 - latency average = 9.1 ms
 - latency stddev = 3.0 ms
SQL script 2: /x/batch.sql
 - weight: 1 (targets 11.1% of total)
 - 10000 transactions (11.1% of total, tps = 666.7)
 - number of failed transactions: 0 (0.000%)
";

    #[test]
    fn reads_multi_script_output() -> anyhow::Result<()> {
        let f = parse(MULTI)?;
        assert_eq!(f.transactions, 90_000);
        assert!((f.tps - 6000.123456).abs() < 1e-6);
        assert_eq!(f.scripts.len(), 2);
        assert_eq!(f.scripts[0].transactions, 80_000);
        assert!((f.scripts[0].tps - 5333.4).abs() < 1e-6);
        assert!(f.script("lookup.sql").is_some());
        Ok(())
    }

    const SINGLE_R: &str = "number of transactions actually processed: 100/100
number of failed transactions: 0 (0.000%)
latency average = 2.000 ms
tps = 500.0 (without initial connection time)
statement latencies in milliseconds and failures:
         0.001           0  \\set i :i + 1
         0.120           0  SELECT \"organizations\".\"id\" FROM x;
         0.050           0  SELECT :one;
";

    #[test]
    fn reads_per_statement_latencies() -> anyhow::Result<()> {
        let f = parse(SINGLE_R)?;
        assert_eq!(f.transactions, 100);
        let s = &f.scripts[0];
        assert_eq!(s.statements.len(), 3);
        assert!((s.statements[1].0 - 0.120).abs() < 1e-9);
        assert!(s.statements[1].1.starts_with("SELECT \"organizations\""));
        assert_eq!(s.transactions, 100);
        Ok(())
    }
}
