//! Black-box tests of the service: the real server on port 0, a fresh database (SQLite and
//! PostgreSQL) and the Stigg emulator, driven over HTTP.

mod abuse;
mod concurrency;
mod db_proxy;
mod helpers;
mod observability;
mod properties;
mod provision;
mod reconcile;
