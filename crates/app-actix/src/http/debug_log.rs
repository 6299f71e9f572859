//! The debug-log writer: one row per API request, written off the request path by group
//! commit, and never lost to a database outage or a clean stop.
//!
//! A request hands its row to one writer task and answers without waiting for the write
//! (ADR 0005). The writer starts on a row as soon as it arrives, so at low load the row lands
//! within a millisecond or so of the answer. Under load it takes every row that arrived while
//! the previous batch was being written and writes them in one multi-row `INSERT`: many
//! requests share one statement, and none of them waits for it.
//!
//! When a batch cannot be written because the database is unavailable, its rows wait in a
//! bounded backlog. The writer retries it while the database is down, and shutdown flushes
//! it. The requests are not held back by the outage. Every row carries a unique key and the
//! store skips a key it has, so a retried batch whose first write did land (the connection
//! lost after the INSERT was sent) leaves no second row. When the database refuses a batch
//! for its content, the rows are written one by one, so that only a row that cannot be
//! written is dropped (logged in full and counted), never the innocent rows beside it. A row
//! that still cannot be written (backlog full, or the database still down at shutdown) goes
//! to the log in full rather than vanishing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use onboarding_domain::ports::{DebugLog, DebugLogEntry, RepoError};
use prometheus::IntCounter;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

/// Most rows in one `INSERT` (well under both backends' bind-parameter limits).
const MAX_BATCH: usize = 512;

/// Rows that may wait for the writer before requests feel back-pressure.
const QUEUE_CAPACITY: usize = 8192;

/// Rows kept while the database is unreachable (a few MB at most).
pub const DEFAULT_BACKLOG_CAPACITY: usize = 10_000;

/// Pause between attempts to write the backlog while the database stays down.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// A key for a new row: unique across requests and instances, and ordered by time (UUIDv7)
/// so that the unique index grows at its end.
pub(crate) fn new_row_key() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The handle requests use; cheap to share.
pub struct DebugLogWriter {
    queue: mpsc::Sender<DebugLogEntry>,
    /// Rows of requests still being served (see [`DebugLogWriter::open_row`]).
    open: Arc<AtomicUsize>,
}

/// The writer task, to stop at shutdown.
pub struct DebugLogTask {
    handle: JoinHandle<()>,
    stop: oneshot::Sender<()>,
    open: Arc<AtomicUsize>,
}

/// A row promised by a request being served; the writer's stop waits for it. Dropping it
/// says the row was handed over (or logged).
pub struct OpenRow(Arc<AtomicUsize>);

impl Drop for OpenRow {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl DebugLogWriter {
    /// Starts the writer task on the current runtime.
    /// `dropped` counts the rows the database refused on their own.
    pub fn start(
        store: Arc<dyn DebugLog>,
        backlog_capacity: usize,
        dropped: IntCounter,
    ) -> (Arc<Self>, DebugLogTask) {
        let (queue, incoming) = mpsc::channel(QUEUE_CAPACITY);
        let (stop, stopped) = oneshot::channel();
        let worker = Worker::new(store, incoming, backlog_capacity, dropped);
        let handle = tokio::spawn(worker.run(stopped));
        let open = Arc::new(AtomicUsize::new(0));
        let task = DebugLogTask {
            handle,
            stop,
            open: open.clone(),
        };
        (Arc::new(Self { queue, open }), task)
    }

    /// Promises a row for a request that has started. A request cut off by a forced stop
    /// hands its row over from another thread while the server winds down, so the writer's
    /// stop waits for every promised row before it closes the queue.
    pub fn open_row(&self) -> OpenRow {
        self.open.fetch_add(1, Ordering::SeqCst);
        OpenRow(self.open.clone())
    }

    /// Hands the row to the writer. It waits only when the queue is full (the database has
    /// fallen that far behind), so requests slow down rather than pile up rows in memory. The
    /// answer does not depend on the write, so this never fails.
    pub async fn record(&self, entry: DebugLogEntry) {
        if let Err(refused) = self.queue.send(entry).await {
            // Only once shutdown has closed the queue: keep the row in the log.
            log_row(&refused.0);
        }
    }

    /// As [`record`](Self::record), without waiting (from a `Drop`): when the queue is full
    /// or closed, the row goes to the log instead.
    pub fn record_now(&self, entry: DebugLogEntry) {
        if let Err(refused) = self.queue.try_send(entry) {
            log_row(&refused.into_inner());
        }
    }
}

impl DebugLogTask {
    /// Closes the queue and waits until every row handed over is written (or logged). Call
    /// once the server has stopped: a row handed over after this is logged instead.
    pub async fn finish(self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.open.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = self.stop.send(());
        if tokio::time::timeout_at(deadline, self.handle)
            .await
            .is_err()
        {
            error!("the debug-log writer did not finish in time; unwritten rows may be lost");
        }
    }
}

struct Worker {
    store: Arc<dyn DebugLog>,
    incoming: mpsc::Receiver<DebugLogEntry>,
    backlog: VecDeque<DebugLogEntry>,
    backlog_capacity: usize,
    dropped: IntCounter,
}

enum Event {
    Rows(usize),
    RetryBacklog,
    Stop,
}

impl Worker {
    fn new(
        store: Arc<dyn DebugLog>,
        incoming: mpsc::Receiver<DebugLogEntry>,
        backlog_capacity: usize,
        dropped: IntCounter,
    ) -> Self {
        Self {
            store,
            incoming,
            backlog: VecDeque::new(),
            backlog_capacity: backlog_capacity.max(1),
            dropped,
        }
    }

    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let retry = !self.backlog.is_empty();
            let event = tokio::select! {
                biased;
                _ = &mut stop => Event::Stop,
                n = self.incoming.recv_many(&mut batch, MAX_BATCH) => Event::Rows(n),
                // While rows wait in the backlog, wake up now and then to retry it.
                () = tokio::time::sleep(RETRY_PAUSE), if retry => Event::RetryBacklog,
            };
            match event {
                Event::Rows(0) | Event::Stop => break,
                Event::Rows(_) => self.write(std::mem::take(&mut batch)).await,
                Event::RetryBacklog => self.write_backlog().await,
            }
        }
        // New rows are refused from now on; the ones already queued are written.
        self.incoming.close();
        while self.incoming.recv_many(&mut batch, MAX_BATCH).await > 0 {
            self.write(std::mem::take(&mut batch)).await;
        }
        self.write_backlog().await;
        if !self.backlog.is_empty() {
            error!(
                rows = self.backlog.len(),
                "debug-log rows could not be written before shutdown; logging them"
            );
            self.backlog.iter().for_each(log_row);
        }
    }

    async fn write(&mut self, entries: Vec<DebugLogEntry>) {
        match self.store.record(&entries).await {
            // The database is back: the backlog goes now, not only when traffic pauses long
            // enough for the retry timer.
            Ok(()) if !self.backlog.is_empty() => self.write_backlog().await,
            Ok(()) => {}
            Err(cause @ RepoError::Unavailable(_)) => {
                warn!(error = %cause, rows = entries.len(), "debug-log rows kept for a later write");
                self.keep(entries);
            }
            Err(cause) => {
                self.write_one_by_one(entries, &cause).await;
            }
        }
    }

    /// Writes the backlog, oldest first, in batches, until the database is unavailable again.
    /// A batch refused for its content is written row by row, so one bad row never holds
    /// back the rows queued behind it.
    async fn write_backlog(&mut self) {
        let mut written = 0_usize;
        while !self.backlog.is_empty() {
            let n = self.backlog.len().min(MAX_BATCH);
            let chunk = &self.backlog.make_contiguous()[..n];
            match self.store.record(chunk).await {
                Ok(()) => {
                    self.backlog.drain(..n);
                    written += n;
                }
                Err(RepoError::Unavailable(_)) => break,
                Err(cause) => {
                    let chunk: Vec<_> = self.backlog.drain(..n).collect();
                    if !self.write_one_by_one(chunk, &cause).await {
                        break;
                    }
                }
            }
        }
        if written > 0 {
            info!(
                written,
                left = self.backlog.len(),
                "debug-log backlog written"
            );
        }
    }

    /// After the database refused a whole batch (`cause`) for a reason other than being
    /// unavailable: each row alone. A row refused again on its own is dropped, logged in full
    /// and counted; rows met by an outage are kept. Rows already written are skipped by their
    /// keys. False when the database became unavailable.
    async fn write_one_by_one(&mut self, entries: Vec<DebugLogEntry>, cause: &RepoError) -> bool {
        warn!(error = %cause, rows = entries.len(), "debug-log batch refused; writing its rows one by one");
        let mut available = true;
        for entry in entries {
            if !available {
                self.keep(vec![entry]);
                continue;
            }
            match self.store.record(std::slice::from_ref(&entry)).await {
                Ok(()) => {}
                Err(RepoError::Unavailable(_)) => {
                    available = false;
                    self.keep(vec![entry]);
                }
                Err(refused) => {
                    error!(error = %refused, "the database refused a debug-log row; logging it instead");
                    self.dropped.inc();
                    log_row(&entry);
                }
            }
        }
        available
    }

    fn keep(&mut self, entries: Vec<DebugLogEntry>) {
        for entry in entries {
            if self.backlog.len() >= self.backlog_capacity
                && let Some(oldest) = self.backlog.pop_front()
            {
                error!("debug-log backlog full; logging its oldest row instead");
                log_row(&oldest);
            }
            self.backlog.push_back(entry);
        }
    }
}

/// The row as a log event, so it is kept somewhere (its body is already redacted).
fn log_row(row: &DebugLogEntry) {
    error!(
        key = %row.key,
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
    use std::sync::Mutex;
    use std::sync::PoisonError;

    use async_trait::async_trait;
    use onboarding_domain::ports::RepoError;

    use super::*;

    fn row(id: &str) -> DebugLogEntry {
        DebugLogEntry {
            key: format!("key-{id}"),
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

    fn counter() -> IntCounter {
        IntCounter::new("dropped", "rows dropped").unwrap()
    }

    /// A store that is down for its first `down_for` calls, takes `latency` per call, refuses
    /// (for its content) any batch holding the request id `refused`, and records the batches
    /// it wrote.
    struct FakeStore {
        down_for: usize,
        latency: Duration,
        refused: Option<&'static str>,
        calls: AtomicUsize,
        batches: Mutex<Vec<Vec<String>>>,
    }

    impl FakeStore {
        fn new(down_for: usize, latency: Duration) -> Arc<Self> {
            Arc::new(Self {
                down_for,
                latency,
                refused: None,
                calls: AtomicUsize::new(0),
                batches: Mutex::new(Vec::new()),
            })
        }

        fn refusing(refused: &'static str, down_for: usize) -> Arc<Self> {
            Arc::new(Self {
                down_for,
                latency: Duration::ZERO,
                refused: Some(refused),
                calls: AtomicUsize::new(0),
                batches: Mutex::new(Vec::new()),
            })
        }

        fn batches(&self) -> Vec<Vec<String>> {
            self.batches
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }

        fn rows(&self) -> Vec<String> {
            self.batches().concat()
        }
    }

    #[async_trait]
    impl DebugLog for FakeStore {
        async fn record(&self, entries: &[DebugLogEntry]) -> Result<(), RepoError> {
            tokio::time::sleep(self.latency).await;
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.down_for {
                return Err(RepoError::Unavailable("connection refused".into()));
            }
            if entries
                .iter()
                .any(|e| e.request_id.as_deref() == self.refused)
            {
                return Err(RepoError::Unexpected(
                    "invalid byte sequence for encoding \"UTF8\": 0x00".into(),
                ));
            }
            let ids = entries
                .iter()
                .map(|e| e.request_id.clone().unwrap_or_default())
                .collect();
            self.batches
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(ids);
            Ok(())
        }
    }

    /// Waits (up to 5 s) until `done` holds for the store.
    async fn until(store: &FakeStore, done: impl Fn(&FakeStore) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !done(store) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn record_does_not_wait_for_the_write() {
        let store = FakeStore::new(0, Duration::from_secs(1));
        let (writer, task) = DebugLogWriter::start(store.clone(), 10, counter());
        let started = std::time::Instant::now();
        writer.record(row("a")).await;
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(store.rows().is_empty());
        // The clean stop writes it.
        drop(writer);
        task.finish(Duration::from_secs(5)).await;
        assert_eq!(store.rows(), ["a"]);
    }

    #[tokio::test]
    async fn a_row_is_written_without_waiting_for_more() {
        let store = FakeStore::new(0, Duration::ZERO);
        let (writer, task) = DebugLogWriter::start(store.clone(), 10, counter());
        writer.record(row("a")).await;
        until(&store, |s| !s.rows().is_empty()).await;
        assert_eq!(store.rows(), ["a"]);
        drop(writer);
        task.finish(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn rows_share_batches_while_a_write_is_under_way() {
        let store = FakeStore::new(0, Duration::from_millis(20));
        let (writer, task) = DebugLogWriter::start(store.clone(), 10, counter());
        let ids: Vec<String> = (0..100).map(|i| format!("r{i}")).collect();
        for id in &ids {
            writer.record(row(id)).await;
        }
        drop(writer);
        task.finish(Duration::from_secs(5)).await;

        // All written, in the order they came.
        assert_eq!(store.rows(), ids);
        // While one batch is written, the others gather: far fewer statements than rows.
        assert!(
            store.batches().len() <= 5,
            "{} batches",
            store.batches().len()
        );
    }

    #[tokio::test]
    async fn rows_that_fail_are_written_when_the_store_returns() {
        let store = FakeStore::new(2, Duration::ZERO);
        let (writer, task) = DebugLogWriter::start(store.clone(), 10, counter());
        writer.record(row("a")).await;
        writer.record(row("b")).await;
        // The first writes fail; the backlog keeps the rows and retries them.
        until(&store, |s| s.calls.load(Ordering::SeqCst) > 0).await;
        assert!(store.rows().is_empty());
        until(&store, |s| s.rows().len() == 2).await;
        assert_eq!(store.rows(), ["a", "b"]);
        drop(writer);
        task.finish(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn steady_traffic_does_not_hold_back_the_backlog() {
        let store = FakeStore::new(1, Duration::ZERO);
        let (writer, task) = DebugLogWriter::start(store.clone(), 10, counter());
        writer.record(row("down")).await;
        until(&store, |s| s.calls.load(Ordering::SeqCst) > 0).await;
        // Rows keep coming more often than the retry pause; the first write that succeeds
        // takes the backlog with it.
        let started = std::time::Instant::now();
        for i in 0..10 {
            writer.record(row(&format!("up{i}"))).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        until(&store, |s| s.rows().contains(&"down".to_owned())).await;
        assert!(started.elapsed() < RETRY_PAUSE, "{:?}", started.elapsed());
        drop(writer);
        task.finish(Duration::from_secs(5)).await;
        assert_eq!(store.rows().len(), 11);
    }

    #[tokio::test]
    async fn shutdown_writes_the_backlog() {
        let store = FakeStore::new(1, Duration::ZERO);
        let (writer, task) = DebugLogWriter::start(store.clone(), 10, counter());
        writer.record(row("a")).await;
        until(&store, |s| s.calls.load(Ordering::SeqCst) > 0).await;
        drop(writer);
        task.finish(Duration::from_secs(5)).await;
        assert_eq!(store.rows(), ["a"]);
    }

    #[tokio::test]
    async fn a_full_backlog_gives_up_its_oldest_rows() {
        let (_queue, incoming) = mpsc::channel(1);
        let mut worker = Worker::new(FakeStore::new(0, Duration::ZERO), incoming, 2, counter());
        worker.keep(vec![row("a"), row("b"), row("c")]);
        let kept: Vec<_> = worker
            .backlog
            .iter()
            .filter_map(|r| r.request_id.clone())
            .collect();
        assert_eq!(kept, ["b", "c"]);
    }

    #[tokio::test]
    async fn shutdown_ends_even_when_the_store_never_returns() {
        let store = FakeStore::new(usize::MAX, Duration::ZERO);
        let (writer, task) = DebugLogWriter::start(store.clone(), 10, counter());
        writer.record(row("a")).await;
        until(&store, |s| s.calls.load(Ordering::SeqCst) > 0).await;
        let started = std::time::Instant::now();
        task.finish(Duration::from_secs(5)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        // After shutdown a row is refused (and logged) without waiting.
        writer.record(row("late")).await;
        assert!(store.rows().is_empty());
    }

    #[tokio::test]
    async fn one_refused_row_never_holds_back_the_rows_beside_or_behind_it() {
        // Down for the first write, so the bad row sits in the backlog with innocent ones.
        let store = FakeStore::refusing("bad", 1);
        let dropped = counter();
        let (writer, task) = DebugLogWriter::start(store.clone(), 1000, dropped.clone());
        writer.record(row("first")).await;
        until(&store, |s| s.calls.load(Ordering::SeqCst) > 0).await;
        for i in 0..300 {
            let id = if i == 150 {
                "bad".to_owned()
            } else {
                format!("r{i}")
            };
            writer.record(row(&id)).await;
        }
        drop(writer);
        task.finish(Duration::from_secs(5)).await;

        let rows = store.rows();
        assert_eq!(rows.len(), 300, "{} rows written", rows.len());
        assert!(!rows.contains(&"bad".to_owned()));
        assert!(rows.contains(&"first".to_owned()) && rows.contains(&"r299".to_owned()));
        assert_eq!(dropped.get(), 1);
    }

    /// A store that writes the batch and then reports the connection lost: the outcome the
    /// writer sees is unknown, and it retries.
    struct LandsThenFails {
        db: onboarding_adapters_db::Database,
        failed_once: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl DebugLog for LandsThenFails {
        async fn record(&self, entries: &[DebugLogEntry]) -> Result<(), RepoError> {
            self.db.record(entries).await?;
            if self.failed_once.swap(true, Ordering::SeqCst) {
                Ok(())
            } else {
                Err(RepoError::Unavailable("connection closed".into()))
            }
        }
    }

    #[tokio::test]
    async fn a_write_whose_outcome_was_unknown_leaves_one_row() {
        let db = onboarding_adapters_db::test_support::TestDatabase::sqlite().await;
        let store = Arc::new(LandsThenFails {
            db: db.database().clone(),
            failed_once: std::sync::atomic::AtomicBool::new(false),
        });
        let (writer, task) = DebugLogWriter::start(store, 10, counter());
        let mut entry = row("req-once");
        entry.key = new_row_key();
        writer.record(entry).await;
        drop(writer);
        task.finish(Duration::from_secs(5)).await;

        let rows = db
            .database()
            .debug_logs_for_request("req-once")
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
    }
}
