//! The load generator: wrk with `bench/wrk/provision.lua`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::procs;

/// What to send.
#[derive(Debug, Clone)]
pub enum Body {
    /// The same body every time.
    Static(String),
    /// `{n}` drawn at random from `first..=last`.
    Random {
        template: String,
        first: u64,
        last: u64,
    },
    /// `{n}` = `first`, `first + 1`, … (`count` in all, split between threads), each once.
    Sequence {
        template: String,
        first: u64,
        count: u64,
    },
    /// Pre-built requests, each sent once (split between threads): each line of `file` is
    /// `<value of header>\t<body>`, for what the script cannot compute, such as a signature.
    Lines { file: PathBuf, header: String },
}

#[derive(Debug, Clone)]
pub struct Load {
    pub addr: SocketAddr,
    pub path: String,
    pub method: String,
    pub headers: Vec<String>,
    pub body: Body,
    pub connections: u32,
    pub threads: u32,
    pub duration_s: u32,
    pub width: usize,
    pub plans: Vec<String>,
    pub idempotency_prefix: Option<String>,
}

/// wrk's figures for one run.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub requests: u64,
    pub duration_s: f64,
    pub rps: f64,
    /// connect + read + write + timeout errors.
    pub socket_errors: u64,
    /// Answers that were not 2xx or 3xx.
    pub non_2xx: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Figures {
    pub fn to_json(&self) -> Value {
        json!({
            "requests": self.requests,
            "durationS": round(self.duration_s, 3),
            "rps": round(self.rps, 1),
            "socketErrors": self.socket_errors,
            "non2xx": self.non_2xx,
            "latencyMs": {
                "p50": round(self.p50_ms, 3),
                "p90": round(self.p90_ms, 3),
                "p99": round(self.p99_ms, 3),
                "p999": round(self.p999_ms, 3),
                "max": round(self.max_ms, 3),
                "mean": round(self.mean_ms, 3),
            }
        })
    }
}

pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// `wrk --version` (it prints its banner and exits 1).
pub fn version() -> String {
    Command::new("wrk")
        .arg("--version")
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines()
                .next()
                .unwrap_or("wrk")
                .split(" Copyright")
                .next()
                .unwrap_or("wrk")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|_| "wrk (unknown version)".to_owned())
}

/// Runs wrk and reads its figures; its output goes to `log`.
pub fn run(root: &Path, load: &Load, log: &Path) -> anyhow::Result<Figures> {
    let mut command = Command::new("wrk");
    command
        .arg("-t")
        .arg(load.threads.to_string())
        .arg("-c")
        .arg(load.connections.to_string())
        .arg("-d")
        .arg(format!("{}s", load.duration_s))
        .args(["--timeout", "10s"])
        .arg("-s")
        .arg(root.join("bench/wrk/provision.lua"));
    for header in &load.headers {
        command.arg("-H").arg(header);
    }
    command.arg(format!("http://{}{}", load.addr, load.path));
    command
        .env("WRK_METHOD", &load.method)
        .env("WRK_THREADS", load.threads.to_string())
        .env("WRK_WIDTH", load.width.to_string())
        .env("WRK_PLANS", load.plans.join(","));
    if let Some(prefix) = &load.idempotency_prefix {
        command.env("WRK_IDEMPOTENCY_PREFIX", prefix);
    }
    match &load.body {
        Body::Static(body) => {
            command.env("WRK_MODE", "static").env("WRK_BODY", body);
        }
        Body::Random {
            template,
            first,
            last,
        } => {
            command
                .env("WRK_MODE", "random")
                .env("WRK_TEMPLATE", template)
                .env("WRK_FIRST", first.to_string())
                .env("WRK_LAST", last.to_string());
        }
        Body::Sequence {
            template,
            first,
            count,
        } => {
            command
                .env("WRK_MODE", "sequence")
                .env("WRK_TEMPLATE", template)
                .env("WRK_FIRST", first.to_string())
                .env("WRK_COUNT", count.to_string());
        }
        Body::Lines { file, header } => {
            command
                .env("WRK_MODE", "lines")
                .env("WRK_FILE", file)
                .env("WRK_LINE_HEADER", header);
        }
    }
    let limit = Duration::from_secs(u64::from(load.duration_s) + 60);
    let output = procs::run_bounded(&mut command, limit, "wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    std::fs::write(log, format!("{stdout}\n--- stderr\n{stderr}"))?;
    if !output.status.success() {
        bail!("wrk failed ({}): {}", output.status, stderr.trim());
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_JSON "))
        .with_context(|| format!("wrk printed no figures: {stdout}{stderr}"))?;
    let v: Value = serde_json::from_str(line).context("bad wrk figures")?;
    let n = |path: &[&str]| -> f64 {
        let mut cur = &v;
        for key in path {
            cur = &cur[*key];
        }
        cur.as_f64().unwrap_or(0.0)
    };
    let requests = n(&["requests"]) as u64;
    let duration_s = n(&["duration_us"]) / 1e6;
    Ok(Figures {
        requests,
        duration_s,
        rps: if duration_s > 0.0 {
            requests as f64 / duration_s
        } else {
            0.0
        },
        socket_errors: (n(&["errors", "connect"])
            + n(&["errors", "read"])
            + n(&["errors", "write"])
            + n(&["errors", "timeout"])) as u64,
        non_2xx: n(&["errors", "status"]) as u64,
        p50_ms: n(&["latency_us", "p50"]) / 1e3,
        p90_ms: n(&["latency_us", "p90"]) / 1e3,
        p99_ms: n(&["latency_us", "p99"]) / 1e3,
        p999_ms: n(&["latency_us", "p999"]) / 1e3,
        max_ms: n(&["latency_us", "max"]) / 1e3,
        mean_ms: n(&["latency_us", "mean"]) / 1e3,
    })
}
