//! Throwaway PostgreSQL clusters: `initdb` and `postgres` from the local server binaries in a
//! temporary directory, stopped and deleted when dropped or when this process exits. Tests
//! take the defaults (durability off: fast); the benchmark asks for production's durability
//! and settings of its own through [`ClusterOptions`].

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::postgres::HOW_TO_FIX;
use crate::pool::open_postgres;

/// How long a fresh cluster may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Cluster::stop`] waits for the server to stop and its directory to go.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A throwaway PostgreSQL cluster started from the local server binaries, in a temporary
/// directory, with the role `postgres` trusted on 127.0.0.1. Stopped and deleted when it is
/// dropped or when this process exits.
///
/// `TestDatabase` shares one per process; a test that needs a server set up differently
/// (TLS on) starts its own.
pub struct Cluster {
    port: u16,
    dir: PathBuf,
    /// The shell that stops the cluster when its stdin, a pipe from this process, closes:
    /// when this is dropped or the process exits.
    process: Mutex<Child>,
}

/// How a [`Cluster`] is set up. The defaults suit tests: no TLS, and durability off (fsync,
/// `synchronous_commit` and `full_page_writes`), as a test never needs a commit to survive a
/// crash of the machine.
#[derive(Default)]
pub struct ClusterOptions {
    tls: Option<ServerTls>,
    durable: bool,
    settings: Vec<String>,
    bin_dir: Option<PathBuf>,
}

impl ClusterOptions {
    /// `ssl = on`, serving the PEM certificate `cert_pem` (the server's, then any
    /// intermediates) with the PEM private key `key_pem`. Plain connections are still accepted.
    #[must_use]
    pub fn tls(mut self, cert_pem: &str, key_pem: &str) -> Self {
        self.tls = Some(ServerTls {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        });
        self
    }

    /// Durability at PostgreSQL's defaults, so that a commit costs what it costs in production
    /// (for measurements).
    #[must_use]
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }

    /// A server setting, `name=value`, given to `postgres` as `-c name=value`; it replaces a
    /// default of the same name (`shared_buffers`, `max_connections`).
    #[must_use]
    pub fn setting(mut self, setting: &str) -> Self {
        self.settings.push(setting.to_owned());
        self
    }

    /// The server binaries from `dir` instead of [`find_bin_dir`]'s choice.
    #[must_use]
    pub fn bin_dir(mut self, dir: &Path) -> Self {
        self.bin_dir = Some(dir.to_owned());
        self
    }

    /// The `-c` settings: the defaults, then `extra` (the TLS files), then the caller's, each
    /// replacing an earlier one of its name.
    fn server_settings(&self, extra: Vec<String>) -> Vec<String> {
        let mut defaults = vec!["max_connections=300", "shared_buffers=32MB"];
        if !self.durable {
            defaults.extend([
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
            ]);
        }
        let name = |setting: &str| setting.split('=').next().unwrap_or("").trim().to_owned();
        let mut settings: Vec<String> = Vec::new();
        let later = defaults.into_iter().map(str::to_owned).chain(extra);
        for setting in later.chain(self.settings.iter().cloned()) {
            settings.retain(|s| name(s) != name(&setting));
            settings.push(setting);
        }
        settings
    }
}

impl Cluster {
    /// A cluster with the default options (no TLS, durability off).
    pub async fn start() -> Result<Self, String> {
        Self::start_with(ClusterOptions::default())
            .await
            .map_err(for_tests)
    }

    /// A cluster with `ssl = on`: see [`ClusterOptions::tls`].
    pub async fn start_with_tls(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        Self::start_with(ClusterOptions::default().tls(cert_pem, key_pem))
            .await
            .map_err(for_tests)
    }

    /// A cluster set up as `options` say. Its errors say what failed, without the tests'
    /// set-up advice that [`Cluster::start`] adds.
    pub async fn start_with(options: ClusterOptions) -> Result<Self, String> {
        let started = tokio::task::spawn_blocking(move || start_cluster(&options))
            .await
            .map_err(|e| format!("starting the cluster panicked: {e}"))??;
        let cluster = Self {
            port: started.port,
            dir: started.dir,
            process: Mutex::new(started.child),
        };
        let url = cluster.url("127.0.0.1", "");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match open_postgres(&url).await {
                Ok(_) => return Ok(cluster),
                Err(e) => {
                    let exited = cluster
                        .process
                        .lock()
                        .map_err(|_| "the cluster's process lock is poisoned".to_owned())?
                        .try_wait()
                        .ok()
                        .flatten();
                    if exited.is_some() || Instant::now() > deadline {
                        let log = read_log(&cluster.log_path());
                        return Err(format!(
                            "the throwaway PostgreSQL cluster did not start ({}; last error: \
                             {e}); its log:\n{log}",
                            exited.map_or("timed out".to_owned(), |s| format!("exited with {s}"))
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@HOST:PORT/postgres` then `query` (e.g. `?sslmode=require`).
    /// The server listens on 127.0.0.1, which `localhost` also names.
    pub fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres{query}", self.port)
    }

    /// The server's output: its log, including statements logged with `log_statement`.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// Stops the server (fast shutdown) and deletes its directory, waiting for both at most
    /// 20 s: dropping the cluster does the same without waiting.
    pub fn stop(self) {
        let mut shell = self
            .process
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        drop(shell.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(shell.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A start-up error with the advice on how to give tests a server.
fn for_tests(error: String) -> String {
    format!("{error}\n{HOW_TO_FIX}")
}

/// The certificate and key a TLS cluster serves.
struct ServerTls {
    cert_pem: String,
    key_pem: String,
}

struct StartedCluster {
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// `initdb` then `postgres`, as the `postgres` user when running as root (both refuse to
/// run as root), set up as `options` say. Blocking.
fn start_cluster(options: &ClusterOptions) -> Result<StartedCluster, String> {
    let bin = match &options.bin_dir {
        Some(dir) => dir.clone(),
        None => find_bin_dir(&["initdb", "postgres"])?,
    };
    let dir = tempfile::Builder::new()
        .prefix("onboarding-pg-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?
        // The shell that stops the cluster deletes it; a TempDir guard could not, as
        // statics are never dropped.
        .keep();
    let as_root = std::fs::metadata(&dir)
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if as_root {
        run(Command::new("chown").arg("postgres:postgres").arg(&dir)).map_err(|e| {
            format!(
                "running as root, but cannot hand {} to the postgres user: {e}",
                dir.display()
            )
        })?;
    }
    let data = dir.join("data");
    run(as_user(as_root, &bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]))
    .map_err(|e| format!("initdb failed: {e}"))?;

    let mut tls_files = Vec::new();
    if let Some(tls) = &options.tls {
        // The server refuses a key that others may read: 0600, owned by the server's user.
        let cert = dir.join("server.crt");
        let key = dir.join("server.key");
        write_private(&cert, &tls.cert_pem, as_root)?;
        write_private(&key, &tls.key_pem, as_root)?;
        tls_files.push("ssl=on".to_owned());
        tls_files.push(format!("ssl_cert_file={}", cert.display()));
        tls_files.push(format!("ssl_key_file={}", key.display()));
    }
    let settings = options.server_settings(tls_files);

    let port = free_port()?;
    // The shell starts the server and waits on its stdin, which is a pipe from this
    // process: when this process exits (even killed) the pipe closes, `read` returns, and
    // the shell stops the server (fast shutdown) and deletes the directory.
    let script = r#"
bin=$1 data=$2 port=$3 dir=$4
shift 4
"$bin" -D "$data" -p "$port" -k "$dir" -h 127.0.0.1 "$@" >"$dir/postgres.log" 2>&1 &
pid=$!
read _ignored
kill -INT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$dir"
"#;
    let child = as_user(as_root, Path::new("sh"))
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(bin.join("postgres"))
        .arg(&data)
        .arg(port.to_string())
        .arg(&dir)
        .args(settings.iter().flat_map(|setting| ["-c", setting.as_str()]))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    Ok(StartedCluster { child, port, dir })
}

/// Writes a file only its owner may read, owned by the `postgres` user when running as root.
fn write_private(path: &Path, contents: &str, as_root: bool) -> Result<(), String> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
        .map_err(|e| cannot(&e))?;
    if as_root {
        run(Command::new("chown").arg("postgres:postgres").arg(path)).map_err(|e| cannot(&e))?;
    }
    Ok(())
}

fn as_user(as_root: bool, program: &Path) -> Command {
    if as_root {
        let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("runuser");
        let mut command = Command::new(runuser);
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} ({})",
            String::from_utf8_lossy(&output.stderr).trim(),
            output.status
        ))
    }
}

/// The PostgreSQL bin directory holding every one of `programs`: `PG_BIN_DIR` when set, else
/// the newest `/usr/lib/postgresql/*/bin` that has them, else the directory the first of them
/// on `PATH` resolves into.
pub fn find_bin_dir(programs: &[&str]) -> Result<PathBuf, String> {
    let has_all = |dir: &Path| programs.iter().all(|program| dir.join(program).is_file());
    let list = programs.join(", ");
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        return if has_all(&dir) {
            Ok(dir)
        } else {
            Err(format!("PG_BIN_DIR={} lacks one of {list}", dir.display()))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_all(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    // A program on PATH may be a symlink into the real bin directory, next to the others.
    let first = programs.first().copied().unwrap_or("initdb");
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(first))
        .find(|program| program.is_file())
        .and_then(|program| std::fs::canonicalize(program).ok())
        .and_then(|program| program.parent().map(Path::to_path_buf))
        .filter(|dir| has_all(dir));
    on_path.ok_or_else(|| format!("no PostgreSQL bin directory with {list} found"))
}

fn free_port() -> Result<u16, String> {
    // The port is free now; postgres binds it a moment later. A clash is unlikely and
    // shows up as a start-up failure with the server's log.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

fn read_log(path: &Path) -> String {
    let mut log = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut log);
    }
    log
}

#[cfg(test)]
mod tests {
    use super::ClusterOptions;

    #[test]
    fn settings_replace_defaults_of_their_name() {
        let fast = ClusterOptions::default().server_settings(Vec::new());
        assert!(fast.contains(&"fsync=off".to_owned()));
        assert!(fast.contains(&"shared_buffers=32MB".to_owned()));
        let durable = ClusterOptions::default()
            .durable()
            .setting("shared_buffers=256MB")
            .setting("log_line_prefix=%m [%p] ")
            .server_settings(vec!["ssl=on".to_owned()]);
        assert_eq!(
            durable,
            [
                "max_connections=300",
                "ssl=on",
                "shared_buffers=256MB",
                "log_line_prefix=%m [%p] "
            ]
        );
    }
}
