//! Black-box tests of the service: the real server on port 0, a fresh database (SQLite and
//! PostgreSQL) and the Stigg emulator, driven over HTTP.

// clippy.toml's allow-*-in-tests reaches only #[test] functions, not this crate's helpers;
// in a test, a set-up step that fails should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod concurrency;
mod db_proxy;
mod helpers;
mod observability;
mod properties;
mod provision;
mod reconcile;
mod stripe_sync;
mod stripe_sync_faults;
