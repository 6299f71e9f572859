use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onboarding_domain::ports::{DebugLog, DebugLogEntry, RepoError};

use crate::dispatch::with_conn;
use crate::pool::Database;
use crate::rows::{DebugLogRow, NewDebugLogRow};
use crate::schema::debug_logs;

#[async_trait]
impl DebugLog for Database {
    async fn record(&self, entry: DebugLogEntry) -> Result<(), RepoError> {
        let row = NewDebugLogRow::from_domain(&entry);
        with_conn!(self.pool, |conn| {
            diesel::insert_into(debug_logs::table)
                .values(&row)
                .execute(conn)
                .await
        })?;
        Ok(())
    }
}

impl Database {
    /// The debug log rows of one request id, oldest first (for support and tests).
    pub async fn debug_logs_for_request(
        &self,
        request_id: &str,
    ) -> Result<Vec<DebugLogEntry>, RepoError> {
        let rows = with_conn!(self.pool, |conn| {
            debug_logs::table
                .filter(debug_logs::request_id.eq(request_id))
                .order(debug_logs::id.asc())
                .select(DebugLogRow::as_select())
                .load(conn)
                .await
        })?;
        rows.into_iter().map(DebugLogEntry::try_from).collect()
    }

    /// The most recent debug log rows, newest first.
    pub async fn recent_debug_logs(&self, limit: i64) -> Result<Vec<DebugLogEntry>, RepoError> {
        let rows = with_conn!(self.pool, |conn| {
            debug_logs::table
                .order(debug_logs::id.desc())
                .limit(limit.max(0))
                .select(DebugLogRow::as_select())
                .load(conn)
                .await
        })?;
        rows.into_iter().map(DebugLogEntry::try_from).collect()
    }
}
