//! The embedded migrations (`migrations/sqlite`, `migrations/postgres`) and running them.
//!
//! diesel's migration harness is synchronous, so migrations run on a blocking thread:
//! on SQLite with the pooled connection's inner `SqliteConnection`, on PostgreSQL with a
//! connection taken out of the pool and wrapped in `AsyncConnectionWrapper`. This works
//! under any Tokio runtime, unlike diesel-async's `AsyncMigrationHarness` (`block_in_place`).

use diesel::backend::Backend;
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::sqlite::Sqlite;
use diesel::{Connection, SqliteConnection};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::dispatch::with_conn;
use crate::error::DbError;
use crate::pool::{DbPool, PgConn};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Session-level advisory lock held while migrating PostgreSQL, so that instances starting
/// together apply the migrations once, one after the other ("onboard1" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6f6e_626f_6172_6431;

diesel::table! {
    /// diesel's own bookkeeping table (created by the harness).
    __diesel_schema_migrations (version) {
        version -> Text,
    }
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Up,
    #[cfg(feature = "test-support")]
    RevertAll,
}

/// Applies the pending migrations; returns their names (e.g.
/// `2026-11-24-000001_onboarding_tables`), empty when the schema was up to date.
pub async fn run_migrations(pool: &DbPool) -> Result<Vec<String>, DbError> {
    let applied = migrate(pool, Direction::Up).await?;
    if applied.is_empty() {
        tracing::info!(backend = %pool.backend(), "database schema is up to date");
    } else {
        let migrations = applied.join(", ");
        tracing::info!(backend = %pool.backend(), %migrations, "applied database migrations");
    }
    Ok(applied)
}

/// Reverts every applied migration (newest first), leaving an empty schema; returns the
/// reverted versions. For tests of the `down.sql` files; never called by the service.
#[cfg(feature = "test-support")]
pub async fn revert_all_migrations(pool: &DbPool) -> Result<Vec<String>, DbError> {
    migrate(pool, Direction::RevertAll).await
}

/// How many embedded migrations the database has not applied yet (0 when ready).
///
/// Read-only, since it backs the readiness probe: a runtime role that may not create tables
/// must still be found ready. A database without the bookkeeping table has applied nothing.
pub async fn pending_migrations(pool: &DbPool) -> Result<usize, DbError> {
    use diesel::prelude::*;
    use diesel::sql_types::Bool;
    use diesel_async::RunQueryDsl;

    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = Bool)]
        exists: bool,
    }
    // The catalogs differ; the question is the same.
    let exists_sql = match pool {
        DbPool::Sqlite(_) => {
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
             AND name = '__diesel_schema_migrations') AS \"exists\""
        }
        DbPool::Postgres(_) => {
            "SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS \"exists\""
        }
    };
    let applied: Vec<String> = with_conn!(pool, |conn| {
        let table = diesel::sql_query(exists_sql)
            .get_result::<Exists>(conn)
            .await?;
        if !table.exists {
            return Ok(Vec::new());
        }
        __diesel_schema_migrations::table
            .select(__diesel_schema_migrations::version)
            .load(conn)
            .await
    })?;
    let known = match pool {
        DbPool::Sqlite(_) => versions::<Sqlite>(&SQLITE_MIGRATIONS)?,
        DbPool::Postgres(_) => versions::<Pg>(&POSTGRES_MIGRATIONS)?,
    };
    Ok(known.iter().filter(|v| !applied.contains(v)).count())
}

fn versions<DB: Backend>(source: &EmbeddedMigrations) -> Result<Vec<String>, DbError> {
    let migrations: Vec<Box<dyn Migration<DB>>> =
        MigrationSource::<DB>::migrations(source).map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}

async fn migrate(pool: &DbPool, direction: Direction) -> Result<Vec<String>, DbError> {
    match pool {
        DbPool::Sqlite(pool) => {
            let mut pooled = pool.get().await?;
            pooled
                .spawn_blocking(move |conn: &mut SqliteConnection| {
                    // BEGIN IMMEDIATE takes the write lock before reading what is pending
                    // (waiting up to busy_timeout), so processes sharing the file migrate
                    // one after the other; each migration runs in a savepoint inside it.
                    Ok(
                        conn.immediate_transaction(|conn| {
                            apply(conn, SQLITE_MIGRATIONS, direction)
                        }),
                    )
                })
                .await?
        }
        DbPool::Postgres(pool) => {
            // The harness needs a sync connection it owns: take one out of the pool (the
            // pool opens a new one when needed) and drive it from a blocking thread.
            let conn: PgConn = deadpool::managed::Object::take(pool.get().await?);
            tokio::task::spawn_blocking(move || {
                let mut conn = AsyncConnectionWrapper::<PgConn>::from(conn);
                migrate_postgres_locked(&mut conn, direction)
            })
            .await
            .map_err(|e| DbError::Migration(format!("migration task failed: {e}")))?
        }
    }
}

fn migrate_postgres_locked(
    conn: &mut AsyncConnectionWrapper<PgConn>,
    direction: Direction,
) -> Result<Vec<String>, DbError> {
    use diesel::RunQueryDsl;
    use diesel::sql_types::BigInt;

    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(conn)?;
    let result = apply(conn, POSTGRES_MIGRATIONS, direction);
    // Closing the connection would release the lock too; unlock anyway to be explicit.
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(conn);
    let names = result?;
    unlocked?;
    Ok(names)
}

fn apply<DB, C>(
    conn: &mut C,
    source: EmbeddedMigrations,
    direction: Direction,
) -> Result<Vec<String>, DbError>
where
    DB: Backend,
    C: Connection<Backend = DB> + MigrationHarness<DB>,
{
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    match direction {
        Direction::Up => {
            let pending = conn.pending_migrations(source).map_err(failed)?;
            let mut applied = Vec::with_capacity(pending.len());
            for migration in &pending {
                conn.run_migration(migration.as_ref()).map_err(failed)?;
                applied.push(migration.name().to_string());
            }
            Ok(applied)
        }
        #[cfg(feature = "test-support")]
        Direction::RevertAll => Ok(conn
            .revert_all_migrations(source)
            .map_err(failed)?
            .iter()
            .map(ToString::to_string)
            .collect()),
    }
}
