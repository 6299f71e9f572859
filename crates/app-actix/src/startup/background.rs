//! Work that `serve` runs beside the HTTP server: the debug-log retention today, the
//! lifecycle sync's worker next. Each task is handed a [`StopFlag`]; on the drain the flag is
//! set and the tasks get until the end of the drain to finish what they are doing (a task
//! stops between two units of work, never in the middle of one), then the stragglers are
//! aborted, so a stop never waits for ever.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::StopFlag;

/// The background tasks of one `serve`.
#[derive(Default)]
pub struct BackgroundTasks {
    stop: StopFlag,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl BackgroundTasks {
    /// Starts `task` with the stop flag it must watch; `name` is for the logs.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(StopFlag) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task(self.stop.clone()));
        self.tasks.push((name, handle));
    }

    /// Asks every task to stop and waits for them, up to `grace` in all; aborts the rest.
    pub async fn stop(self, grace: Duration) {
        self.stop.stop();
        let deadline = tokio::time::Instant::now() + grace;
        for (name, mut handle) in self.tasks {
            match tokio::time::timeout_at(deadline, &mut handle).await {
                Ok(Ok(())) => debug!(task = name, "background task stopped"),
                Ok(Err(error)) => warn!(task = name, %error, "background task failed"),
                Err(_) => {
                    warn!(
                        task = name,
                        "background task still running after the drain; aborted"
                    );
                    handle.abort();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use onboarding_domain::use_cases::StopSignal;

    use super::*;

    #[tokio::test]
    async fn a_task_that_watches_the_flag_finishes_its_work_and_stops() {
        let finished = Arc::new(AtomicBool::new(false));
        let mut tasks = BackgroundTasks::default();
        let seen = Arc::clone(&finished);
        tasks.spawn("watcher", move |stop| async move {
            stop.stopped().await;
            // The unit of work in hand is finished after the stop was asked.
            tokio::time::sleep(Duration::from_millis(20)).await;
            seen.store(true, Ordering::SeqCst);
        });
        tasks.stop(Duration::from_secs(5)).await;
        assert!(finished.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_flag_is_aborted_at_the_end_of_the_drain() {
        let mut tasks = BackgroundTasks::default();
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn("stubborn", move |_stop| async move {
            let _dropped_on_abort = dropped_tx;
            std::future::pending::<()>().await;
        });
        let started = tokio::time::Instant::now();
        tasks.stop(Duration::from_millis(300)).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        // Aborted: the task's state was dropped.
        assert!(dropped_rx.await.is_err());
    }
}
