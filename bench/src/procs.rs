//! Processes: long-running ones (emulator, service, bare handler) behind a small shell that
//! stops them when the benchmark goes away, bounded runs of tools, and /proc readings.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Starts `"$@"` in the background with its output in `$1`, prints its pid, and waits on
/// standard input: when the benchmark closes it (done, failed, or killed), the program gets
/// SIGTERM and the shell waits for it.
const SUPERVISOR: &str = r#"
trap '' INT
out=$1; shift
"$@" >"$out" 2>&1 </dev/null &
pid=$!
echo "$pid"
read _ignored
kill -TERM "$pid" 2>/dev/null
wait "$pid"
"#;

/// A long-running program under the supervising shell.
pub struct Daemon {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
    shell: Child,
    stdin: Option<ChildStdin>,
}

impl Daemon {
    /// `envs` replace the environment (PATH is kept); stopping sends SIGTERM first.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        log: &Path,
        cwd: &Path,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(log)
            .arg(program)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut shell = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({})", program.display()))?;
        let stdout = shell.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .with_context(|| format!("{name}: no pid from the supervising shell"))?;
        let pid = line
            .trim()
            .parse()
            .with_context(|| format!("{name}: bad pid {line:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            pid,
            log: log.to_owned(),
            stdin: shell.stdin.take(),
            shell,
        })
    }

    pub fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
            && ProcStats::read(self.pid).is_ok_and(|s| s.state != 'Z')
    }

    pub fn stats(&self) -> anyhow::Result<ProcStats> {
        ProcStats::read(self.pid).with_context(|| format!("{} is not running", self.name))
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 20)
    }

    /// SIGTERM (through the shell), then SIGKILL after `grace`.
    pub fn stop(mut self, grace: Duration) {
        self.stop_inner(grace);
    }

    fn stop_inner(&mut self, grace: Duration) {
        let Some(stdin) = self.stdin.take() else {
            return;
        };
        drop(stdin);
        if wait_bounded(&mut self.shell, grace).is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
            let _ = wait_bounded(&mut self.shell, Duration::from_secs(5));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop_inner(Duration::from_secs(10));
    }
}

/// Waits for a child at most `limit`.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// Runs a command to completion within `limit`, capturing its output; killed beyond.
pub fn run_bounded(command: &mut Command, limit: Duration, what: &str) -> anyhow::Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    // Drain both pipes on threads so a chatty tool cannot block on a full pipe.
    let mut stdout = child.stdout.take().context("no stdout")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let status = match wait_bounded(&mut child, limit) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {}s", limit.as_secs());
        }
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Like [`run_bounded`], failing unless the command succeeds; returns standard output.
pub fn run_ok(command: &mut Command, limit: Duration, what: &str) -> anyhow::Result<String> {
    let output = run_bounded(command, limit, what)?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// CPU and memory of one process, from /proc.
#[derive(Debug, Clone, Copy)]
pub struct ProcStats {
    pub state: char,
    /// user + system CPU, in clock ticks.
    pub cpu_ticks: u64,
    /// Peak resident set (VmHWM), KiB.
    pub peak_rss_kib: u64,
}

impl ProcStats {
    pub fn read(pid: u32) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .context("bad /proc stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| -> anyhow::Result<u64> {
            fields
                .get(i)
                .context("short /proc stat")?
                .parse()
                .context("bad /proc stat number")
        };
        // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        let state = fields.first().and_then(|s| s.chars().next()).unwrap_or('?');
        let cpu_ticks = field(11)? + field(12)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(Self {
            state,
            cpu_ticks,
            peak_rss_kib: kib("VmHWM:"),
        })
    }
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// Children's CPU already waited for, in ticks (cutime + cstime of this process).
pub fn children_cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let rest = stat.rsplit_once(')')?.1.to_owned();
            let fields: Vec<u64> = rest
                .split_whitespace()
                .skip(1)
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            // cutime and cstime are fields 16 and 17: indexes 13 and 14 after the state.
            Some(fields.get(12)? + fields.get(13)?)
        })
        .unwrap_or(0)
}

/// The last `lines` lines of a text file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free port")?;
    Ok(listener.local_addr()?.port())
}

/// The machine's CPU time so far (all CPUs), from the first line of /proc/stat, in ticks.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    busy: u64,
    total: u64,
}

impl MachineCpu {
    pub fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let total: u64 = fields.iter().sum();
        // idle and iowait are the 4th and 5th numbers.
        let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
        Self {
            busy: total.saturating_sub(idle),
            total,
        }
    }

    /// Share of all CPUs busy since `earlier`, in percent.
    pub fn busy_percent_since(&self, earlier: &Self) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        self.busy.saturating_sub(earlier.busy) as f64 * 100.0 / total as f64
    }
}

/// Programs that, running next to the benchmark, would skew it (builds, mostly).
const DISTURBERS: &[&str] = &[
    "cargo",
    "rustc",
    "cc1",
    "cc1plus",
    "ld",
    "ld.lld",
    "clang",
    "rust-analyzer",
];

/// Names of disturbing programs running now (not started by the benchmark).
pub fn disturbers() -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|comm| comm.trim().to_owned())
        .filter(|comm| DISTURBERS.contains(&comm.as_str()))
        .collect();
    found.sort();
    found.dedup();
    found
}
