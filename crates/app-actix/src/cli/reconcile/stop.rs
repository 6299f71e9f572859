//! Ctrl-C during a reconcile: the first stops taking subscriptions and lets those in flight
//! finish; the second quits at once (unfinished leases then lapse by themselves).

use indicatif::ProgressBar;

use crate::startup::StopFlag;

/// Exit status after a stop by Ctrl-C (128 + SIGINT), as shells report it.
pub(super) const EXIT_INTERRUPTED: u8 = 130;

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
