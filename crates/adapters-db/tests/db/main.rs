//! Integration tests of the database adapter. Every test in `repos`, `backlog`,
//! `provisioning`, `leases`, `debug_log`, `inbox`, `sync_state` and `migrations` runs twice, as `<module>::sqlite::<test>` and
//! `<module>::postgres::<test>`, each on a fresh database of its own (`TestDatabase`).
//! `tls` runs PostgreSQL only, on throwaway clusters of its own.

// clippy.toml's allow-*-in-tests reaches only #[test] functions, not this crate's helpers;
// in a test, a set-up step that fails should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod backlog;
mod connect;
mod debug_log;
mod inbox;
mod leases;
mod migrations;
mod provisioning;
mod rate_buckets;
mod repos;
mod sync_state;
mod tls;
