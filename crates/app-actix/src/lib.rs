//! The onboarding service: the HTTP API (actix-web), the `onboarding` command line, and the
//! wiring of the domain's use cases to their adapters (database, Stigg, clock).
//!
//! It stays thin: parsing at the edge, one mapping of errors to HTTP (`error`), no business
//! rules.

pub mod build_info;
pub mod cli;
pub mod clock;
pub mod config;
pub mod debug_log;
pub mod error;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod reconcile;
pub mod redact;
pub mod retention;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
