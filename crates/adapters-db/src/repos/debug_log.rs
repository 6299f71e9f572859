use async_trait::async_trait;
use diesel_async::RunQueryDsl;
use onboarding_domain::ports::{DebugLog, DebugLogEntry, RepoError};

use crate::dispatch::with_conn;
use crate::error::DbError;
use crate::pool::{Database, DbPool};
use crate::rows::NewDebugLogRow;
use crate::schema::debug_logs;

/// The batch `INSERT`, defined once for both backends (a macro: its type differs per
/// backend and diesel cannot name it). A row whose key is already stored is skipped: a batch
/// retried after an unknown outcome (the connection lost after the statement was sent)
/// writes each row once.
macro_rules! insert {
    ($rows:expr) => {
        diesel::insert_into(debug_logs::table)
            .values($rows)
            .on_conflict_do_nothing()
    };
}
#[async_trait]
impl DebugLog for Database {
    /// One multi-row `INSERT`, so a batch is one round trip and atomic.
    ///
    /// The one statement written per backend: diesel builds SQLite's multi-row `INSERT` only
    /// for its synchronous connection, so on SQLite the same query-builder code runs on the
    /// wrapper's blocking thread.
    async fn record(&self, entries: &[DebugLogEntry]) -> Result<(), RepoError> {
        if entries.is_empty() {
            return Ok(());
        }
        match &self.pool {
            DbPool::Postgres(pool) => {
                let mut conn = pool.get().await.map_err(DbError::from)?;
                let rows = new_rows(entries);
                insert!(&rows)
                    .execute(&mut *conn)
                    .await
                    .map_err(DbError::from)?;
            }
            DbPool::Sqlite(pool) => {
                let mut conn = pool.get().await.map_err(DbError::from)?;
                let entries = entries.to_vec();
                conn.spawn_blocking(move |conn| {
                    diesel::RunQueryDsl::execute(insert!(&new_rows(&entries)), conn)
                })
                .await
                .map_err(DbError::from)?;
            }
        }
        Ok(())
    }
}

fn new_rows(entries: &[DebugLogEntry]) -> Vec<NewDebugLogRow<'_>> {
    entries.iter().map(NewDebugLogRow::from_domain).collect()
}

impl Database {
    /// Deletes up to `batch` rows written before `cutoff`, oldest first; how many it deleted.
    /// One short statement per batch, so pruning a large backlog never holds the table for
    /// long: the caller loops while a whole batch went.
    pub async fn prune_debug_logs(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        batch: usize,
    ) -> Result<usize, RepoError> {
        let cutoff = cutoff.naive_utc();
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        // diesel cannot delete through a subquery with LIMIT; the statement is the same on
        // both backends (SQLite numbers `$1`, `$2` in order of appearance).
        let deleted = with_conn!(self.pool, |conn| {
            diesel::sql_query(
                "DELETE FROM debug_logs WHERE id IN \
                 (SELECT id FROM debug_logs WHERE created_at < $1 ORDER BY id LIMIT $2)",
            )
            .bind::<diesel::sql_types::Timestamp, _>(cutoff)
            .bind::<diesel::sql_types::BigInt, _>(batch)
            .execute(conn)
            .await
        })?;
        Ok(deleted)
    }
}
