//! The use cases: one module per thing the onboarding service does.

pub mod provision_subscription;
pub mod reconcile_provisioning;
pub mod sync_subscription;
