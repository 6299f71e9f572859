//! The Stigg adapter: an HTTP client for Stigg's REST API v1 that implements the domain's
//! [`StiggGateway`](onboarding_domain::ports::StiggGateway) port.
//!
//! It creates customers and subscriptions with idempotency keys, reads an entity back after a
//! 409 and compares it with what was asked, retries transient failures with full-jitter
//! backoff inside the caller's deadline, and keeps a client-side rate limit per operation.
//! The contract it follows is `docs/stigg.md`.

mod client;
mod config;
mod error;
mod gateway;
mod observer;
mod operation;
mod rate_limit;
mod retry;
mod wire;

pub use config::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP, DEFAULT_BASE_URL,
    DEFAULT_CALLS_PER_MINUTE, DEFAULT_MAX_ATTEMPTS, StiggConfig, default_user_agent, shown_url,
};
pub use gateway::{GatewayBuildError, HttpStiggGateway, HttpStiggGatewayBuilder};
pub use observer::{CallEvent, CallObserver, CallOutcome};
pub use operation::Operation;
pub use retry::{Jitter, Sleeper};
