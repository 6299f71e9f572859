//! The ports: what the domain needs from the outside world, as traits that adapters
//! implement. Each port says what its errors mean.
//!
//! With the `mocks` feature (and in this crate's tests) every port has a mockall double,
//! `Mock<Port>`.

mod clock;
mod debug_log;
mod lease_store;
mod org_repo;
mod provisioning_backlog;
mod provisioning_store;
mod stigg_gateway;
mod stigg_lifecycle;
mod stripe_inbox;
mod stripe_reader;
mod subscription_repo;
mod sync_state_store;

pub use clock::Clock;
pub use debug_log::{DebugLog, DebugLogEntry};
pub use lease_store::LeaseStore;
pub use org_repo::OrgRepo;
pub use provisioning_backlog::{PendingProvisioning, ProvisioningBacklog};
pub use provisioning_store::ProvisioningStore;
pub use stigg_gateway::{
    CallContext, CustomerProvisioning, KeyRenewal, StiggCustomer, StiggError, StiggGateway,
    StiggSubscription, SubscriptionProvisioning, TrialConfiguration,
};
pub use stigg_lifecycle::{Cancellation, StiggLifecycle, SubscriptionCreation, SubscriptionPatch};
pub use stripe_inbox::{EventRecord, InboxCounts, PendingEvent, Settlement, StripeInbox};
pub use stripe_reader::{StripeError, StripeReader};
pub use subscription_repo::SubscriptionRepo;
pub use sync_state_store::{Intent, SyncRecord, SyncStateStore, SyncView};

#[cfg(any(test, feature = "mocks"))]
pub use clock::MockClock;
#[cfg(any(test, feature = "mocks"))]
pub use debug_log::MockDebugLog;
#[cfg(any(test, feature = "mocks"))]
pub use lease_store::MockLeaseStore;
#[cfg(any(test, feature = "mocks"))]
pub use org_repo::MockOrgRepo;
#[cfg(any(test, feature = "mocks"))]
pub use provisioning_backlog::MockProvisioningBacklog;
#[cfg(any(test, feature = "mocks"))]
pub use provisioning_store::MockProvisioningStore;
#[cfg(any(test, feature = "mocks"))]
pub use stigg_gateway::MockStiggGateway;
#[cfg(any(test, feature = "mocks"))]
pub use stigg_lifecycle::MockStiggLifecycle;
#[cfg(any(test, feature = "mocks"))]
pub use stripe_inbox::MockStripeInbox;
#[cfg(any(test, feature = "mocks"))]
pub use stripe_reader::MockStripeReader;
#[cfg(any(test, feature = "mocks"))]
pub use subscription_repo::MockSubscriptionRepo;
#[cfg(any(test, feature = "mocks"))]
pub use sync_state_store::MockSyncStateStore;

/// What can go wrong in any store (database) port.
///
/// Messages are for logs: they may carry the driver's words but never SQL text or
/// credentials. Callers show users only a fixed message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// The store cannot be reached now (pool timeout, connection refused or lost); a retry
    /// later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else the store reported.
    #[error("database error: {0}")]
    Unexpected(String),
}
