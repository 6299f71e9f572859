//! Reading the debug log back: the service only writes it, tests read what it wrote.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use diesel_async::RunQueryDsl;
use onboarding_domain::ports::{DebugLogEntry, RepoError};

use crate::Database;
use crate::dispatch::with_conn;
use crate::error::bad_row;
use crate::rows::utc;
use crate::schema::debug_logs;

impl Database {
    /// The debug log rows of one request id, oldest first.
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

/// A `debug_logs` row as read back.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = debug_logs, check_for_backend(Sqlite, Pg))]
struct DebugLogRow {
    request_id: Option<String>,
    correlation_id: Option<String>,
    tenant_id: Option<String>,
    method: String,
    path: String,
    request_body: Option<String>,
    status: i32,
    error_code: Option<String>,
    duration_ms: i64,
    created_at: NaiveDateTime,
    row_key: Option<String>,
}

impl TryFrom<DebugLogRow> for DebugLogEntry {
    type Error = RepoError;

    fn try_from(row: DebugLogRow) -> Result<Self, RepoError> {
        let status = u16::try_from(row.status)
            .map_err(|e| bad_row("debug_logs", "status", &row.status.to_string(), e))?;
        Ok(Self {
            // Rows written before keys existed have none.
            key: row.row_key.unwrap_or_default(),
            request_id: row.request_id,
            correlation_id: row.correlation_id,
            tenant_id: row.tenant_id,
            method: row.method,
            path: row.path,
            request_body: row.request_body,
            status,
            error_code: row.error_code,
            duration_ms: row.duration_ms,
            created_at: utc(row.created_at),
        })
    }
}
