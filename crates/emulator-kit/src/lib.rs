//! What the bundled emulators (`stigg-emulator`, `stripe-emulator`) share, so that each holds
//! only its vendor's behaviour: serving an actix app on a socket in the background
//! ([`Served`]), the logs of their binaries ([`init_logs`]), state locks that survive a
//! panicked handler ([`lock`]), which requests a scripted fault hits ([`FaultScope`]), and
//! when a binary should stop ([`wait_for_stop`]).

mod faults;
mod server;

use std::io::IsTerminal;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub use faults::{FaultScope, Scoped, status_problem, take_first};
pub use server::Served;
use tracing_subscriber::EnvFilter;

/// The state behind `mutex`, even if a handler panicked while holding it: every update an
/// emulator makes leaves its state consistent enough to go on serving.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Logs of an emulator binary: `RUST_LOG` (default `info`) to standard error, coloured only
/// for a person at a terminal, never into a file or a collector.
pub fn init_logs() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Resolves on Ctrl-C or SIGTERM: when an emulator binary should stop.
pub async fn wait_for_stop() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
