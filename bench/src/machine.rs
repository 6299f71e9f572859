//! What the figures were measured on.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

fn first_line_of(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().next().map(|l| l.trim().to_owned())
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub struct Machine {
    pub cpu: String,
    pub cpus: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub os: String,
    pub rustc: String,
    pub load_average: String,
    /// Share of the CPUs busy in the seconds before the run.
    pub busy_before: f64,
}

impl Machine {
    pub fn describe(root: &Path) -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let memory_kib: f64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default();
        let rustc = first_line_of(Command::new("rustc").arg("--version").current_dir(root))
            .unwrap_or_default();
        let load_average = read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            cpu,
            cpus,
            memory_gib: memory_kib / 1024.0 / 1024.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            os,
            rustc,
            load_average,
            busy_before: 0.0,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "cpu": self.cpu,
            "cpus": self.cpus,
            "memoryGiB": (self.memory_gib * 10.0).round() / 10.0,
            "kernel": self.kernel,
            "os": self.os,
            "rustc": self.rustc,
            "loadAverageAtStart": self.load_average,
            "busyPercentBeforeStart": (self.busy_before * 10.0).round() / 10.0,
        })
    }
}
