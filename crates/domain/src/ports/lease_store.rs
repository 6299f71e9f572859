use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepoError;
use crate::model::{Lease, LeaseKey};

/// Leases that let exactly one caller, on any instance sharing the store, work on a key at a
/// time. A lease lapses by itself at its expiry, so a holder that crashed blocks the key for
/// at most one TTL; a live holder takes a TTL longer than its own deadline, or renews.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes `key` until `now + ttl` for a new holder, unless another holder's lease has not
    /// expired at `now` (then `None`). Atomic across processes.
    async fn try_take(
        &self,
        key: &LeaseKey,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<Lease>, RepoError>;

    /// Extends a lease still held to `now + ttl`. `None` when it expired and another holder
    /// took the key since: the caller has lost it and must stop before its next change.
    async fn renew(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<Lease>, RepoError>;

    /// Gives the lease back, so the next caller need not wait for it to lapse. A lease that
    /// has since passed to another holder is left alone.
    async fn release(&self, lease: &Lease) -> Result<(), RepoError>;

    /// When the key's current lease ends, if one is held: for telling a waiting caller how
    /// long to wait.
    async fn expiry(&self, key: &LeaseKey) -> Result<Option<DateTime<Utc>>, RepoError>;
}
