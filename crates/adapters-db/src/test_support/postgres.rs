//! PostgreSQL for tests: a server from `TEST_DATABASE_URL` or a throwaway cluster, and one
//! database per test on it; and throwaway clusters of a test's own (`Cluster`), e.g. with TLS.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::pool::open_postgres;

const HOW_TO_FIX: &str = "PostgreSQL tests need a server: set TEST_DATABASE_URL to a server \
     where the role may CREATE DATABASE (e.g. postgres://postgres@127.0.0.1:5432/postgres), or \
     install the PostgreSQL server binaries (Debian/Ubuntu: apt-get install postgresql) so that \
     a throwaway cluster can be started; binaries are looked for in PG_BIN_DIR, the newest \
     /usr/lib/postgresql/*/bin, then initdb on PATH";

/// How long a fresh cluster may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

static SERVER: OnceCell<Result<Server, String>> = OnceCell::const_new();

struct Server {
    /// Where `CREATE DATABASE` / `DROP DATABASE` are sent.
    admin_url: String,
    /// The throwaway cluster, when there is one; a static, so it lives until this process
    /// exits.
    _cluster: Option<Cluster>,
}

/// A throwaway PostgreSQL cluster started from the local server binaries, in a temporary
/// directory, with the role `postgres` trusted on 127.0.0.1. Stopped and deleted when it is
/// dropped or when this process exits.
///
/// `TestDatabase` shares one per process; a test that needs a server set up differently
/// (TLS on) starts its own.
pub struct Cluster {
    port: u16,
    /// The shell that stops the cluster when its stdin, a pipe from this process, closes:
    /// when this is dropped or the process exits.
    process: Mutex<Child>,
}

impl Cluster {
    /// A cluster without TLS (PostgreSQL's default `ssl = off`).
    pub async fn start() -> Result<Self, String> {
        Self::launch(None).await
    }

    /// A cluster with `ssl = on`, serving the PEM certificate `cert_pem` (the server's, then
    /// any intermediates) with the PEM private key `key_pem`. Plain connections are still
    /// accepted.
    pub async fn start_with_tls(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        Self::launch(Some(ServerTls {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        }))
        .await
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@HOST:PORT/postgres` then `query` (e.g. `?sslmode=require`).
    /// The server listens on 127.0.0.1, which `localhost` also names.
    pub fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres{query}", self.port)
    }

    async fn launch(tls: Option<ServerTls>) -> Result<Self, String> {
        let started = tokio::task::spawn_blocking(move || start_cluster(tls.as_ref()))
            .await
            .map_err(|e| format!("starting the cluster panicked: {e}"))??;
        let cluster = Self {
            port: started.port,
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
                        let log = read_log(&started.dir);
                        return Err(format!(
                            "the throwaway PostgreSQL cluster did not start ({}; last error: \
                             {e}); its log:\n{log}\n{HOW_TO_FIX}",
                            exited.map_or("timed out".to_owned(), |s| format!("exited with {s}"))
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// The certificate and key a TLS cluster serves.
struct ServerTls {
    cert_pem: String,
    key_pem: String,
}

impl Server {
    fn database_url(&self, name: &str) -> String {
        with_database(&self.admin_url, name)
    }
}

/// Drops a test's database, from `TestDatabase::drop`.
pub(super) struct DropDatabase {
    admin_url: String,
    name: String,
}

impl DropDatabase {
    pub(super) fn run(&self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop is synchronous and may run inside a runtime: do the async work on a thread
        // of its own with a runtime of its own.
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = open_postgres(&admin_url).await.map_err(|e| e.to_string())?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// Creates an empty database for one test; returns its URL and how to drop it.
pub(super) async fn create_database() -> Result<(String, DropDatabase), String> {
    let server = SERVER
        .get_or_init(start_server)
        .await
        .as_ref()
        .map_err(Clone::clone)?;
    let name = format!("onboarding_test_{}", Uuid::now_v7().simple());
    let mut admin = open_postgres(&server.admin_url)
        .await
        .map_err(|e| format!("cannot connect to the test server: {e}. {HOW_TO_FIX}"))?;
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(|e| format!("CREATE DATABASE {name} failed: {e}. {HOW_TO_FIX}"))?;
    Ok((
        server.database_url(&name),
        DropDatabase {
            admin_url: server.admin_url.clone(),
            name,
        },
    ))
}

async fn start_server() -> Result<Server, String> {
    if let Ok(url) = std::env::var("TEST_DATABASE_URL")
        && !url.trim().is_empty()
    {
        let url = url.trim().to_owned();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!(
                "TEST_DATABASE_URL must be a postgres:// URL. {HOW_TO_FIX}"
            ));
        }
        return Ok(Server {
            admin_url: url,
            _cluster: None,
        });
    }
    let cluster = Cluster::start().await?;
    Ok(Server {
        admin_url: cluster.url("127.0.0.1", ""),
        _cluster: Some(cluster),
    })
}

struct StartedCluster {
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// `initdb` then `postgres`, as the `postgres` user when running as root (both refuse to
/// run as root), with TLS on when `tls` is given. Blocking.
fn start_cluster(tls: Option<&ServerTls>) -> Result<StartedCluster, String> {
    let bin = find_bin_dir()?;
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
    .map_err(|e| format!("initdb failed: {e}. {HOW_TO_FIX}"))?;

    // Settings beyond the common ones, as `-c name=value` arguments.
    let mut settings = Vec::new();
    if let Some(tls) = tls {
        // The server refuses a key that others may read: 0600, owned by the server's user.
        let cert = dir.join("server.crt");
        let key = dir.join("server.key");
        write_private(&cert, &tls.cert_pem, as_root)?;
        write_private(&key, &tls.key_pem, as_root)?;
        settings.push("ssl=on".to_owned());
        settings.push(format!("ssl_cert_file={}", cert.display()));
        settings.push(format!("ssl_key_file={}", key.display()));
    }

    let port = free_port()?;
    // The shell starts the server and waits on its stdin, which is a pipe from this
    // process: when this process exits (even killed) the pipe closes, `read` returns, and
    // the shell stops the server (fast shutdown) and deletes the directory.
    let script = r#"
bin=$1 data=$2 port=$3 dir=$4
shift 4
"$bin" -D "$data" -p "$port" -k "$dir" -h 127.0.0.1 -F \
    -c max_connections=300 -c shared_buffers=32MB \
    -c synchronous_commit=off -c full_page_writes=off "$@" >"$dir/postgres.log" 2>&1 &
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
        .map_err(|e| format!("cannot start postgres: {e}. {HOW_TO_FIX}"))?;
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

fn find_bin_dir() -> Result<PathBuf, String> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        return if has_server(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "PG_BIN_DIR={} has no initdb and postgres. {HOW_TO_FIX}",
                dir.display()
            ))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    // initdb on PATH may be a symlink into the real bin directory, next to postgres.
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("initdb"))
        .find(|initdb| initdb.is_file())
        .and_then(|initdb| std::fs::canonicalize(initdb).ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .filter(|dir| has_server(dir));
    on_path.ok_or_else(|| format!("no PostgreSQL server binaries found. {HOW_TO_FIX}"))
}

fn free_port() -> Result<u16, String> {
    // The port is free now; postgres binds it a moment later. A clash is unlikely and
    // shows up as a start-up failure with the server's log.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

fn read_log(dir: &Path) -> String {
    let mut log = String::new();
    if let Ok(mut file) = std::fs::File::open(dir.join("postgres.log")) {
        let _ = file.read_to_string(&mut log);
    }
    log
}

/// `url` with its database name replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_path(&format!("/{name}"));
            parsed.into()
        }
        // Not a URL: nothing to replace.
        Err(_) => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "t1"),
            "postgres://u:p@h:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://h/db?sslmode=disable", "t1"),
            "postgresql://h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
    }
}
