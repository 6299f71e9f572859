//! Integration tests of the database adapter. Every test in `repos`, `backlog`,
//! `provisioning`, `leases`, `debug_log` and `migrations` runs twice, as `<module>::sqlite::<test>` and
//! `<module>::postgres::<test>`, each on a fresh database of its own (`TestDatabase`).
//! `tls` runs PostgreSQL only, on throwaway clusters of its own.

mod support;

mod backlog;
mod connect;
mod debug_log;
mod leases;
mod migrations;
mod provisioning;
mod repos;
mod tls;
