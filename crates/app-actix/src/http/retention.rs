//! Deletes `debug_logs` rows past their retention (`DEBUG_LOG_RETENTION_DAYS`), in the
//! background of `serve`: at start-up, then every hour.

use std::time::Duration;

use onboarding_adapters_db::Database;
use onboarding_domain::use_cases::StopSignal;
use tracing::{info, warn};

use crate::startup::BackgroundTasks;

/// Rows deleted per statement: each statement is short, so requests writing rows meanwhile
/// never wait long for the table.
const BATCH: usize = 1_000;

/// Pause between batches, so a large backlog of old rows is deleted without hogging the
/// database.
const BATCH_PAUSE: Duration = Duration::from_millis(20);

const EVERY: Duration = Duration::from_secs(60 * 60);

/// Starts the pruning task, unless rows are kept forever (`days` = 0). It stops between two
/// rounds when `serve` drains.
pub fn start(background: &mut BackgroundTasks, db: Database, days: u32) {
    if days == 0 {
        return;
    }
    background.spawn("debug-log retention", move |stop| async move {
        while !stop.is_stopped() {
            prune_once(&db, days).await;
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                () = stop.stopped() => {}
            }
        }
    });
}

/// Deletes every row older than `days`, batch by batch; how many went. A database error
/// ends this round (it is logged); the next round tries again.
pub async fn prune_once(db: &Database, days: u32) -> usize {
    let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
    let mut deleted = 0;
    loop {
        match db.prune_debug_logs(cutoff, BATCH).await {
            Ok(n) => {
                deleted += n;
                if n < BATCH {
                    break;
                }
                tokio::time::sleep(BATCH_PAUSE).await;
            }
            Err(error) => {
                warn!(%error, "cannot delete old debug-log rows; trying again next round");
                break;
            }
        }
    }
    if deleted > 0 {
        info!(deleted, retention_days = days, "old debug-log rows deleted");
    }
    deleted
}

#[cfg(test)]
mod tests {
    use onboarding_adapters_db::test_support::TestDatabase;
    use onboarding_domain::ports::{DebugLog, DebugLogEntry};

    use super::*;

    fn row(i: usize, age_days: i64) -> DebugLogEntry {
        DebugLogEntry {
            key: format!("k-{i}"),
            request_id: Some(format!("req-{i}")),
            correlation_id: None,
            tenant_id: None,
            method: "POST".into(),
            path: "/api/stigg/provision".into(),
            request_body: None,
            status: 400,
            error_code: None,
            duration_ms: 1,
            created_at: chrono::Utc::now() - chrono::Duration::days(age_days),
        }
    }

    #[tokio::test]
    async fn rows_past_the_retention_go_in_batches_and_recent_ones_stay() {
        let db = TestDatabase::sqlite().await;
        // More old rows than one batch holds.
        let rows: Vec<_> = (0..BATCH + 5)
            .map(|i| row(i, 31))
            .chain((0..3).map(|i| row(BATCH + 100 + i, 29)))
            .collect();
        db.database().record(&rows).await.unwrap();

        assert_eq!(prune_once(db.database(), 30).await, BATCH + 5);
        let left = db.database().recent_debug_logs(100).await.unwrap();
        assert_eq!(left.len(), 3);
        assert_eq!(prune_once(db.database(), 30).await, 0);
    }
}
