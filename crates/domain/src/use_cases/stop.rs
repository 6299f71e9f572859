use async_trait::async_trait;
use futures::future;

/// The request to stop (Ctrl-C, SIGTERM), set by the caller while a long run goes on: a
/// reconcile run, a worker's loop. The run finishes what is in flight and takes nothing new.
#[async_trait]
pub trait StopSignal: Send + Sync {
    fn is_stopped(&self) -> bool;
    /// Resolves once a stop has been requested (at once if it already was).
    async fn stopped(&self);
}

/// A stop that never comes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NeverStop;

#[async_trait]
impl StopSignal for NeverStop {
    fn is_stopped(&self) -> bool {
        false
    }

    async fn stopped(&self) {
        future::pending::<()>().await;
    }
}
