//! Databases for tests (feature `test-support`): a fresh, migrated SQLite file or
//! PostgreSQL database per test, on either backend.
//!
//! PostgreSQL comes from, in order:
//! 1. `TEST_DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`): each test
//!    gets its own database on that server, created with `CREATE DATABASE` (the role needs
//!    that right) and dropped when the `TestDatabase` is dropped;
//! 2. otherwise one throwaway cluster per test process, started from the local PostgreSQL
//!    server binaries (`PG_BIN_DIR`, the newest `/usr/lib/postgresql/*/bin`, or `initdb` on
//!    `PATH`) in a temporary directory, stopped and deleted when the process exits.
//!
//! When neither works the test fails with instructions; it is never skipped.
//!
//! A test that needs a server set up differently (e.g. with TLS on) starts a [`Cluster`] of
//! its own the same way. [`on_both_backends!`] runs a test on each backend.

// Test support: a set-up step that fails fails the test, with its message.
#![allow(clippy::expect_used)]

mod both_backends;
mod cluster;
mod debug_log;
mod postgres;

pub use crate::on_both_backends;
pub use both_backends::{BackendTestInput, run_on};
pub use cluster::{Cluster, ClusterOptions, find_bin_dir};
pub use postgres::with_database;

use std::ops::Deref;

use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use secrecy::SecretString;
use tempfile::TempDir;

use crate::dispatch::with_conn;
use crate::{Backend, Database, DbConfig, DbError, connect, run_migrations};

/// A database of its own for one test. Derefs to [`Database`].
pub struct TestDatabase {
    db: Database,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The SQLite file's directory, deleted on drop.
    Sqlite(#[allow(dead_code)] TempDir),
    /// The PostgreSQL database, dropped on drop.
    Postgres(postgres::DropDatabase),
}

impl TestDatabase {
    /// A fresh SQLite file in a temporary directory, migrated.
    pub async fn sqlite() -> Self {
        Self::new(Backend::Sqlite).await
    }

    /// A fresh PostgreSQL database, migrated. See the module docs for where the server
    /// comes from.
    pub async fn postgres() -> Self {
        Self::new(Backend::Postgres).await
    }

    /// A fresh, migrated database on `backend`. Panics (failing the test) with a message
    /// saying how to fix the set-up when no database can be made.
    pub async fn new(backend: Backend) -> Self {
        Self::build(backend, true)
            .await
            .unwrap_or_else(|e| panic!("cannot create a {backend} test database: {e}"))
    }

    /// A fresh database on `backend` without any migration applied.
    pub async fn unmigrated(backend: Backend) -> Self {
        Self::build(backend, false)
            .await
            .unwrap_or_else(|e| panic!("cannot create a {backend} test database: {e}"))
    }

    /// Like [`TestDatabase::new`], returning the reason instead of panicking.
    async fn build(backend: Backend, migrate: bool) -> Result<Self, String> {
        let (url, cleanup) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("onboarding-sqlite-")
                    .tempdir()
                    .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
                let path = dir.path().join("test.db");
                let path = path
                    .to_str()
                    .ok_or("the temporary directory's path is not UTF-8")?;
                (format!("sqlite://{path}"), Cleanup::Sqlite(dir))
            }
            Backend::Postgres => {
                let (url, drop) = postgres::create_database().await?;
                (url, Cleanup::Postgres(drop))
            }
        };
        let mut config = DbConfig::new(SecretString::from(url.clone()));
        config.max_connections = 8;
        // Generous: parallel tests share a small machine.
        config.acquire_timeout = std::time::Duration::from_secs(15);
        let db = connect(&config).await.map_err(|e| e.to_string())?;
        if migrate {
            run_migrations(db.pool()).await.map_err(|e| e.to_string())?;
        }
        Ok(Self { db, url, cleanup })
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The URL of this test's database, for a service under test (`DATABASE_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs plain SQL (one or more statements), e.g. the seeding statements external test
    /// suites use.
    pub async fn execute(&self, sql: &str) -> Result<(), DbError> {
        with_conn!(self.db.pool, |conn| conn.batch_execute(sql).await)
    }

    /// The single number a plain SQL query selects as `n`, e.g.
    /// `SELECT count(*) AS n FROM debug_logs`.
    pub async fn count(&self, sql: &str) -> Result<i64, DbError> {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        with_conn!(self.db.pool, |conn| {
            diesel::sql_query(sql)
                .get_result::<Count>(conn)
                .await
                .map(|c| c.n)
        })
    }
}

impl Deref for TestDatabase {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.db
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        self.db.pool().close();
        if let Cleanup::Postgres(drop) = &self.cleanup {
            drop.run();
        }
    }
}
