//! Ctrl-C during a reconcile: the first stops taking subscriptions and lets those in flight
//! finish; the second quits at once (unfinished leases then lapse by themselves).

use std::sync::Arc;

use async_trait::async_trait;
use indicatif::ProgressBar;
use onboarding_domain::use_cases::StopSignal;
use tokio::sync::watch;

/// Exit status after a stop by Ctrl-C (128 + SIGINT), as shells report it.
pub(super) const EXIT_INTERRUPTED: u8 = 130;

/// The stop request, set on Ctrl-C and awaited by items waiting for the rate limit.
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

/// Where to say that a stop was heard.
pub(super) enum Notice {
    Bar(ProgressBar),
    Log,
}

impl Notice {
    fn say(&self, message: &str) {
        match self {
            Self::Bar(bar) => bar.println(message),
            Self::Log => tracing::warn!("{message}"),
        }
    }
}

/// First Ctrl-C: stop taking subscriptions, finish those in flight. Second: quit at once.
pub(super) fn listen_for_ctrl_c(stop: StopFlag, notice: Notice) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        stop.stop();
        notice.say(
            "Ctrl-C: finishing the Stigg calls in flight, then stopping \
             (press Ctrl-C again to quit at once)",
        );
        if tokio::signal::ctrl_c().await.is_ok() {
            notice.say("Ctrl-C again: quitting; unfinished subscriptions stay pending");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    })
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
