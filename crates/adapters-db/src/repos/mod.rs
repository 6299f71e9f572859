//! The domain's store ports, implemented on `Database`: one file per port, except the
//! reconcile backlog, a query over subscriptions that lives with `SubscriptionRepo`.

mod debug_log;
mod lease_store;
mod org_repo;
mod provisioning_store;
mod subscription_repo;
