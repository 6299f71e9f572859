use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepoError;

/// One API request as it is kept for debugging (`debug_logs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugLogEntry {
    /// Unique to the request, made by the caller. A row is written at most once per key, so
    /// a write whose outcome is unknown can be retried without leaving a second row.
    pub key: String,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub tenant_id: Option<String>,
    pub method: String,
    pub path: String,
    /// The request body, already truncated and stripped of secrets by the caller.
    pub request_body: Option<String>,
    pub status: u16,
    pub error_code: Option<String>,
    pub duration_ms: i64,
    pub created_at: DateTime<Utc>,
}

/// The debug log of API requests.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DebugLog: Send + Sync {
    /// Writes the rows in one go, all of them or none. Taking a batch lets a writer put the
    /// rows of many concurrent requests into one statement (group commit). A row whose key
    /// is already stored is skipped, so writing a batch again is harmless.
    async fn record(&self, entries: &[DebugLogEntry]) -> Result<(), RepoError>;
}
