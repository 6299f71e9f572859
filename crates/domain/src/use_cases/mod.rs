//! The use cases: one module per thing the onboarding service does.

mod context;
mod stop;

pub mod provision_subscription;
pub mod reconcile_provisioning;
pub mod sync_subscription;

pub use context::OperationContext;
pub use stop::{NeverStop, StopSignal};
