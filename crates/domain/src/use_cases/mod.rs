//! The use cases: one module per thing the onboarding service does.

mod context;
mod lease_release;
mod stigg_provisioning;
mod stop;

pub mod handle_stripe_events;
pub mod provision_subscription;
pub mod reconcile_provisioning;
pub mod sync_subscription;

pub use context::OperationContext;
pub use stop::{NeverStop, StopSignal};
