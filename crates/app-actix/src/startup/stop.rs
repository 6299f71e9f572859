//! A stop request that long-running work polls and awaits: Ctrl-C during a `reconcile`, the
//! drain of `serve` for its background tasks.

use std::sync::Arc;

use async_trait::async_trait;
use onboarding_domain::use_cases::StopSignal;
use tokio::sync::watch;

/// The stop request: set once, seen by every clone, awaited by whoever waits (e.g. an item
/// waiting for the rate limit, a background task between rounds).
#[derive(Clone)]
pub struct StopFlag(Arc<watch::Sender<bool>>);

impl Default for StopFlag {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }
}

impl StopFlag {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

#[async_trait]
impl StopSignal for StopFlag {
    fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    async fn stopped(&self) {
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = self.0.subscribe().wait_for(|stopped| *stopped).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_stop_flag_wakes_whoever_waits_for_it() {
        let stop = StopFlag::default();
        assert!(!stop.is_stopped());
        let waiter = {
            let stop = stop.clone();
            tokio::spawn(async move { stop.stopped().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        stop.stop();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter was not woken")
            .unwrap();
        assert!(stop.is_stopped());
        // Already stopped: resolves at once.
        tokio::time::timeout(Duration::from_secs(1), stop.stopped())
            .await
            .unwrap();
    }
}
