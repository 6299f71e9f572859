//! The onboarding service, the `onboarding` binary: two rooms around one wiring.
//!
//! - `http`: the HTTP API (actix-web): routes, the API middleware, the mapping of errors to
//!   HTTP answers, the debug-log writer, the OpenAPI document.
//! - `cli`: the command line, one module per command, with a result type of its own.
//! - `startup`: the wiring both rooms run on: settings → adapters → use cases, and the server.
//!
//! Beside them, what both rooms share: `config` (settings and the plan catalog), `failure`
//! (the contract's error codes and shape), `metrics`, `redact` and `telemetry`. It stays
//! thin: parsing at the edge, no business rules.

pub mod build_info;
pub mod cli;
pub mod config;
pub mod failure;
pub mod http;
pub mod metrics;
pub mod redact;
pub mod startup;
pub mod telemetry;
