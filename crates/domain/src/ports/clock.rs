use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Time, so that deadlines, leases and waits can be tested without waiting.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Clock: Send + Sync {
    /// Wall-clock time, for what is stored (leases, provisioning times).
    fn now(&self) -> DateTime<Utc>;
    /// Monotonic time, for deadlines.
    fn monotonic(&self) -> Instant;
    /// Waits for `duration`.
    async fn sleep(&self, duration: Duration);
}
