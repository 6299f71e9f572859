//! Giving a lease back, shared by every use case that takes one.

use tracing::warn;

use crate::model::Lease;
use crate::ports::LeaseStore;

/// Gives the lease back so the next holder need not wait for it to lapse. If this fails, the
/// lease lapses by itself: the caller's own outcome matters more.
pub(crate) async fn release(leases: &dyn LeaseStore, lease: &Lease) {
    if let Err(error) = leases.release(lease).await {
        warn!(key = %lease.key, %error, "could not release the lease; it will lapse");
    }
}
