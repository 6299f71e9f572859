//! The connection pools of both backends, and `Database`, the handle the ports are
//! implemented on.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deadpool::Runtime;
use deadpool::managed::{Metrics, QueueMode};
use diesel::connection::SimpleConnection;
use diesel::{Connection, ConnectionError, ConnectionResult, SqliteConnection};
use diesel_async::AsyncPgConnection;
use diesel_async::SimpleAsyncConnection;
use diesel_async::pooled_connection::deadpool::{Hook, HookError, Pool, PoolBuilder};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use onboarding_domain::ports::RepoError;
use secrecy::ExposeSecret;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{DbConfig, PgUrl, Target};
use crate::dispatch::with_conn;
use crate::error::DbError;

/// An SQLite connection made async: every statement runs on Tokio's blocking pool.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
/// A PostgreSQL connection (tokio-postgres underneath, no libpq).
pub type PgConn = AsyncPgConnection;

// Set on every new SQLite connection; none of them persist except journal_mode.
// busy_timeout comes first so that switching to WAL waits for other connections.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                              PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// Which database engine a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pool of connections to one of the two backends. Cloning it is cheap (an `Arc`).
#[derive(Clone)]
pub enum DbPool {
    Sqlite(Pool<SqliteConn>),
    Postgres(Pool<PgConn>),
}

impl DbPool {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes the pool: connections are dropped and every later checkout fails with
    /// `Unavailable`.
    pub fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close(),
            Self::Postgres(pool) => pool.close(),
        }
    }

    /// (connections open, connections idle).
    fn status(&self) -> (usize, usize) {
        let status = match self {
            Self::Sqlite(pool) => pool.status(),
            Self::Postgres(pool) => pool.status(),
        };
        (status.size, status.available)
    }
}

impl fmt::Debug for DbPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (size, available) = self.status();
        f.debug_struct("DbPool")
            .field("backend", &self.backend())
            .field("size", &size)
            .field("available", &available)
            .finish()
    }
}

/// The database: implements the domain's store ports. Cloning it is cheap.
#[derive(Clone, Debug)]
pub struct Database {
    pub(crate) pool: DbPool,
}

impl Database {
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// The backend behind the pool (the Stigg budget is shared only on PostgreSQL).
    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// Checks out a connection and runs `SELECT 1`: the readiness probe.
    pub async fn ping(&self) -> Result<(), RepoError> {
        self.ping_inner().await.map_err(RepoError::from)
    }

    async fn ping_inner(&self) -> Result<(), DbError> {
        use diesel::IntoSql;
        use diesel::sql_types::Integer;
        use diesel_async::RunQueryDsl;

        with_conn!(self.pool, |conn| {
            diesel::select(1_i32.into_sql::<Integer>())
                .get_result::<i32>(conn)
                .await
        })
        .map(|_| ())
    }
}

/// Builds the pool for `config.url`'s backend and checks that one connection can be opened,
/// so a wrong URL stops start-up with a clear message.
///
/// The pool applies `config.acquire_timeout` to waiting for, opening and recycling a
/// connection. Errors never contain the URL.
pub async fn connect(config: &DbConfig) -> Result<Database, DbError> {
    if config.max_connections == 0 {
        return Err(DbError::Config(
            "the pool needs at least one connection (max_connections = 0)".into(),
        ));
    }
    let target = Target::parse(config.url.expose_secret())?;
    let pool = match &target {
        Target::Sqlite(path) => DbPool::Sqlite(sqlite_pool(path, config)?),
        Target::Postgres(url) => DbPool::Postgres(
            postgres_pool(url, config).map_err(|e| scrub(e, config.url.expose_secret()))?,
        ),
    };
    let db = Database { pool };
    if let Err(e) = db.ping_inner().await {
        db.pool.close();
        let e = scrub(e, config.url.expose_secret());
        return Err(match (&target, e) {
            (Target::Sqlite(path), DbError::Unavailable(m)) => DbError::Unavailable(format!(
                "cannot open SQLite database {}: {}",
                path.display(),
                m.trim_start_matches("cannot connect: ")
            )),
            (_, e) => e,
        });
    }
    tracing::info!(
        backend = %target.backend(),
        database = %target.describe(),
        max_connections = config.max_connections,
        "database pool ready"
    );
    Ok(db)
}

fn sqlite_pool(path: &Path, config: &DbConfig) -> Result<Pool<SqliteConn>, DbError> {
    let path = path
        .to_str()
        .ok_or_else(|| DbError::Config("the SQLite path is not valid UTF-8".into()))?;
    // Every statement runs on the blocking pool of the runtime the connection was made
    // for. Made for an HTTP worker, it would fail ("task was cancelled") once that worker
    // stops, while the debug-log writer still writes its last rows: so every connection
    // uses the runtime that built the pool, which outlives the workers.
    let runtime = pool_runtime()?;
    let mut manager_config = ManagerConfig::<SqliteConn>::default();
    manager_config.custom_setup = Box::new(move |path| {
        let path = path.to_owned();
        // The wrapper takes the runtime it is made on: make it in a task of the pool's.
        let made = runtime.spawn(async move {
            // Opening the file and setting pragmas block: keep them off the async workers.
            let conn = tokio::task::spawn_blocking(move || open_sqlite(&path))
                .await
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))??;
            Ok(SyncConnectionWrapper::new(conn))
        });
        Box::pin(async move {
            made.await
                .map_err(|e| ConnectionError::BadConnection(format!("connection task: {e}")))?
        })
    });
    // A file does not go away between checkouts: skip the test query on every checkout.
    manager_config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::new_with_config(path, manager_config);
    build_pool(Pool::builder(manager), config, "SQLite")
}

/// The runtime building the pool: the one its connections are made and driven on.
fn pool_runtime() -> Result<tokio::runtime::Handle, DbError> {
    tokio::runtime::Handle::try_current()
        .map_err(|_| DbError::Config("the connection pool needs a Tokio runtime".into()))
}

fn open_sqlite(path: &str) -> ConnectionResult<SqliteConnection> {
    let mut conn = SqliteConnection::establish(path)?;
    conn.batch_execute(SQLITE_PRAGMAS)
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// A PostgreSQL connection not checked out for this long is tested with `SELECT 1` before it
/// is handed out again.
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

fn postgres_pool(url: &PgUrl, config: &DbConfig) -> Result<Pool<PgConn>, DbError> {
    // Parsed, and the TLS roots read, once for the pool rather than per connection.
    let connector = Arc::new(PgConnector::new(url)?);
    // A PostgreSQL connection is driven by a task on the runtime that opened it. Opened from
    // an HTTP worker (each has a runtime of its own), it would die with that worker at
    // shutdown while the pool still hands it out: the debug-log writer's last rows would
    // meet "connection closed". So every connection is opened, and driven, on the runtime
    // that built the pool, which outlives the workers.
    let runtime = pool_runtime()?;
    let mut manager_config = ManagerConfig::<PgConn>::default();
    manager_config.custom_setup = Box::new(move |_url| {
        let connector = Arc::clone(&connector);
        let opened = runtime.spawn(async move { connector.open().await });
        Box::pin(async move {
            opened
                .await
                .map_err(|e| ConnectionError::BadConnection(format!("connection task: {e}")))?
        })
    });
    // Every checkout drops a connection whose socket the server closed (restart, failover):
    // the manager checks that for free. A connection idle for a while is also tested with a
    // round trip, since a silent network may have lost it; a busy one is not, so requests
    // under load pay no extra round trip per checkout.
    manager_config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::new_with_config(&url.url, manager_config);
    let ping_when_idle = Hook::async_fn(|conn: &mut PgConn, metrics: &Metrics| {
        let idle = metrics.last_used() >= PING_IDLE_AFTER;
        Box::pin(async move {
            if idle {
                conn.batch_execute("SELECT 1")
                    .await
                    .map_err(|e| HookError::message(format!("idle connection lost: {e}")))?;
            }
            Ok(())
        })
    });
    build_pool(
        Pool::builder(manager).pre_recycle(ping_when_idle),
        config,
        "PostgreSQL",
    )
}

/// Both backends' pools share their sizing and timeouts. The runtime is required: deadpool
/// refuses timeouts without one.
fn build_pool<C>(
    builder: PoolBuilder<C>,
    config: &DbConfig,
    backend: &str,
) -> Result<Pool<C>, DbError>
where
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager,
{
    builder
        .max_size(config.max_connections)
        // The most recently returned connection goes out first: under light load the same
        // few stay warm (and skip the idle check) while the rest sit unused.
        .queue_mode(QueueMode::Lifo)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.acquire_timeout))
        .create_timeout(Some(config.acquire_timeout))
        .recycle_timeout(Some(config.acquire_timeout))
        .build()
        .map_err(|e| DbError::Config(format!("cannot build the {backend} pool: {e}")))
}

/// Opens PostgreSQL connections: the URL as tokio-postgres parsed it, with `sslmode` set, and
/// the TLS configuration (`None` for `sslmode=disable`).
pub(crate) struct PgConnector {
    config: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
}

impl PgConnector {
    pub(crate) fn new(url: &PgUrl) -> Result<Self, DbError> {
        let mut config: tokio_postgres::Config = url
            .url
            .parse()
            .map_err(|e| DbError::Config(format!("invalid PostgreSQL URL: {}", error_chain(&e))))?;
        config.ssl_mode(url.tls.mode.negotiation());
        let tls = url.tls.connector()?;
        Ok(Self { config, tls })
    }

    /// Opens one connection. Unlike `AsyncPgConnection::establish`, a failure keeps its
    /// cause ("Connection refused", "invalid peer certificate: UnknownIssuer").
    pub(crate) async fn open(&self) -> ConnectionResult<PgConn> {
        let failed = |e: tokio_postgres::Error| ConnectionError::BadConnection(error_chain(&e));
        match &self.tls {
            None => {
                let (client, connection) = self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(failed)?;
                AsyncPgConnection::try_from_client_and_connection(client, connection).await
            }
            Some(tls) => {
                let (client, connection) =
                    self.config.connect(tls.clone()).await.map_err(failed)?;
                AsyncPgConnection::try_from_client_and_connection(client, connection).await
            }
        }
    }
}

/// Opens one PostgreSQL connection to `url` (a `postgres://` URL, `sslmode` included), for
/// the test support's one-off administration connections.
#[cfg(feature = "test-support")]
pub(crate) async fn open_postgres(url: &str) -> ConnectionResult<PgConn> {
    let connector = match Target::parse(url) {
        Ok(Target::Postgres(url)) => PgConnector::new(&url),
        Ok(Target::Sqlite(_)) => Err(DbError::Config("not a PostgreSQL URL".into())),
        Err(e) => Err(e),
    }
    .map_err(|e| ConnectionError::InvalidConnectionUrl(scrub(e, url).to_string()))?;
    connector.open().await
}

/// The error and its causes, "error connecting to server: Connection refused (os error 111)".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// Drivers do not echo passwords, but make sure: blank out anything of the URL that could
/// be a credential should a message ever contain it.
fn scrub(e: DbError, url: &str) -> DbError {
    let secrets = credentials(url);
    let clean = |m: String| {
        secrets
            .iter()
            .filter(|s| s.len() >= 3)
            .fold(m, |m, s| m.replace(s.as_str(), "***"))
    };
    match e {
        DbError::Config(m) => DbError::Config(clean(m)),
        DbError::Unavailable(m) => DbError::Unavailable(clean(m)),
        DbError::Query(m) => DbError::Query(clean(m)),
        DbError::Migration(m) => DbError::Migration(clean(m)),
    }
}

/// The password in the URL's user info and any `password=` query parameter, and the URL.
fn credentials(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            out.push(password.to_owned());
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=')
                && key.eq_ignore_ascii_case("password")
            {
                out.push(value.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_passwords() {
        let url = "postgres://alice:hunter2@h/db?password=other1";
        let e = scrub(
            DbError::Unavailable(
                "bad hunter2 and other1 and postgres://alice:hunter2@h/db?password=other1".into(),
            ),
            url,
        );
        let shown = e.to_string();
        assert!(
            !shown.contains("hunter2") && !shown.contains("other1"),
            "{shown}"
        );
    }
}
