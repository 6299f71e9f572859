//! The domain's store ports, implemented on `Database`. One file per port.

mod debug_log;
mod lease_store;
mod org_repo;
mod provisioning_store;
mod subscription_repo;
