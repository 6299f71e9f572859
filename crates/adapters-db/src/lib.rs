//! The database adapter of the onboarding service: diesel-async repositories that implement
//! the domain's store ports (`OrgRepo`, `SubscriptionRepo`, `ProvisioningBacklog`,
//! `ProvisioningStore`, `LeaseStore`, `DebugLog`, `StripeInbox`, `SyncStateStore`).
//!
//! One code base serves two backends chosen at run time from `DATABASE_URL`: SQLite (the
//! embedded default, through `SyncConnectionWrapper`) and PostgreSQL (production). Each query
//! is written once and compiled for both connection types by the `with_conn!` macro
//! (`dispatch.rs`); the schema (`schema.rs`) uses only types both backends share, and the
//! migrations live in `migrations/{sqlite,postgres}` under identical names.

mod config;
mod dispatch;
mod error;
mod json;
mod migrate;
mod pool;
mod repos;
mod rows;
mod schema;
mod seed;
mod tls;

#[cfg(feature = "test-support")]
pub mod test_support;

pub use config::{
    DEFAULT_DATABASE_URL, DEFAULT_POSTGRES_CONNECTIONS, DEFAULT_SQLITE_CONNECTIONS, DbConfig,
};
pub use error::DbError;
#[cfg(feature = "test-support")]
pub use migrate::revert_all_migrations;
pub use migrate::{pending_migrations, run_migrations};
pub use pool::{Backend, Database, DbPool, PgConn, SqliteConn, connect};
pub use repos::{BucketDraw, BudgetChoice, BudgetTake};
pub use seed::seed_demo;
