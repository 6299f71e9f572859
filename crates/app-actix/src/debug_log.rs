//! Debug-log rows that survive a database outage.
//!
//! A row is written while the request is answered, so a caller can find it at once. When that
//! write fails, the row waits in a bounded in-memory backlog; a background task writes it when
//! the database answers again, and shutdown flushes what is left. A row that still cannot be
//! written (backlog full, or the database still down at shutdown) goes to the log in full
//! rather than vanishing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use onboarding_domain::ports::{DebugLog, DebugLogEntry, RepoError};
use tokio::sync::Notify;
use tracing::{error, info, warn};

/// Rows kept while the database is unreachable (a few MB at most).
pub const DEFAULT_BACKLOG_CAPACITY: usize = 10_000;

/// Pause between attempts to write the backlog while the database stays down.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

pub struct ResilientDebugLog {
    store: Arc<dyn DebugLog>,
    backlog: Mutex<VecDeque<DebugLogEntry>>,
    capacity: usize,
    queued: Notify,
}

impl ResilientDebugLog {
    pub fn new(store: Arc<dyn DebugLog>, capacity: usize) -> Self {
        Self {
            store,
            backlog: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            queued: Notify::new(),
        }
    }

    /// Rows waiting to be written.
    pub fn backlog_len(&self) -> usize {
        self.lock().len()
    }

    /// Writes the backlog whenever it has rows, pausing while the database stays down. Runs
    /// until the task is aborted.
    pub async fn retry_forever(self: Arc<Self>) {
        loop {
            if self.backlog_len() == 0 {
                self.queued.notified().await;
            }
            if self.write_backlog().await > 0 {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }

    /// Last chance at shutdown: writes what it can, logs the rest in full.
    pub async fn flush(&self) {
        let left = self.write_backlog().await;
        if left == 0 {
            return;
        }
        let rows: Vec<_> = self.lock().drain(..).collect();
        error!(
            rows = rows.len(),
            "debug-log rows could not be written before shutdown; logging them"
        );
        rows.iter().for_each(log_row);
    }

    /// Writes backlog rows oldest first until one fails; returns how many are left.
    async fn write_backlog(&self) -> usize {
        let mut written = 0_usize;
        loop {
            let Some(row) = self.lock().front().cloned() else {
                break;
            };
            if self.store.record(row).await.is_err() {
                break;
            }
            self.lock().pop_front();
            written += 1;
        }
        let left = self.backlog_len();
        if written > 0 {
            info!(written, left, "debug-log backlog written");
        }
        left
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<DebugLogEntry>> {
        self.backlog.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl DebugLog for ResilientDebugLog {
    /// Never fails: a row that cannot be written now is kept for later.
    async fn record(&self, entry: DebugLogEntry) -> Result<(), RepoError> {
        let Err(cause) = self.store.record(entry.clone()).await else {
            return Ok(());
        };
        warn!(error = %cause, "debug-log row kept for a later write");
        let dropped = {
            let mut backlog = self.lock();
            let dropped = (backlog.len() >= self.capacity)
                .then(|| backlog.pop_front())
                .flatten();
            backlog.push_back(entry);
            dropped
        };
        if let Some(row) = dropped {
            error!("debug-log backlog full; logging its oldest row instead");
            log_row(&row);
        }
        self.queued.notify_one();
        Ok(())
    }
}

/// The row as a log event, so it is kept somewhere (its body is already redacted).
fn log_row(row: &DebugLogEntry) {
    error!(
        request_id = row.request_id.as_deref(),
        correlation_id = row.correlation_id.as_deref(),
        tenant_id = row.tenant_id.as_deref(),
        method = %row.method,
        path = %row.path,
        request_body = row.request_body.as_deref(),
        status = row.status,
        error_code = row.error_code.as_deref(),
        duration_ms = row.duration_ms,
        created_at = %row.created_at,
        "unwritten debug-log row"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use onboarding_domain::ports::MockDebugLog;

    use super::*;

    fn row(id: &str) -> DebugLogEntry {
        DebugLogEntry {
            request_id: Some(id.into()),
            correlation_id: None,
            tenant_id: None,
            method: "POST".into(),
            path: "/api/stigg/provision".into(),
            request_body: None,
            status: 200,
            error_code: None,
            duration_ms: 1,
            created_at: chrono::Utc::now(),
        }
    }

    /// A store that is down for its first `down_for` writes, recording what it wrote.
    fn flaky_store(down_for: usize, written: Arc<Mutex<Vec<String>>>) -> MockDebugLog {
        let calls = AtomicUsize::new(0);
        let mut store = MockDebugLog::new();
        store.expect_record().returning(move |entry| {
            if calls.fetch_add(1, Ordering::SeqCst) < down_for {
                return Err(RepoError::Unavailable("connection refused".into()));
            }
            written
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(entry.request_id.unwrap_or_default());
            Ok(())
        });
        store
    }

    #[tokio::test]
    async fn rows_that_fail_are_written_later_in_order() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let log = ResilientDebugLog::new(Arc::new(flaky_store(3, written.clone())), 10);

        assert!(log.record(row("a")).await.is_ok());
        assert!(log.record(row("b")).await.is_ok());
        assert_eq!(log.backlog_len(), 2);
        // The third attempt fails too (still down), then the store is back.
        assert_eq!(log.write_backlog().await, 2);
        assert_eq!(log.write_backlog().await, 0);

        let written = written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(written, ["a", "b"]);
    }

    #[tokio::test]
    async fn a_full_backlog_gives_up_its_oldest_row() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let log = ResilientDebugLog::new(Arc::new(flaky_store(usize::MAX, written)), 2);
        for id in ["a", "b", "c"] {
            assert!(log.record(row(id)).await.is_ok());
        }
        let kept: Vec<_> = log
            .lock()
            .iter()
            .filter_map(|r| r.request_id.clone())
            .collect();
        assert_eq!(kept, ["b", "c"]);
    }

    #[tokio::test]
    async fn flush_empties_the_backlog_even_when_the_store_stays_down() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let log = ResilientDebugLog::new(Arc::new(flaky_store(usize::MAX, written)), 10);
        assert!(log.record(row("a")).await.is_ok());
        log.flush().await;
        assert_eq!(log.backlog_len(), 0);
    }

    #[tokio::test]
    async fn the_background_task_writes_the_backlog_when_the_store_returns() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(ResilientDebugLog::new(
            Arc::new(flaky_store(1, written.clone())),
            10,
        ));
        let task = tokio::spawn(log.clone().retry_forever());
        assert!(log.record(row("a")).await.is_ok());
        for _ in 0..100 {
            if log.backlog_len() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
        assert_eq!(log.backlog_len(), 0);
        assert_eq!(
            *written.lock().unwrap_or_else(PoisonError::into_inner),
            ["a"]
        );
    }
}
