//! The Stigg adapter: an HTTP client for Stigg's REST API v1 that implements the domain's
//! [`StiggGateway`](onboarding_domain::ports::StiggGateway) port (provisioning) and its
//! [`StiggLifecycle`](onboarding_domain::ports::StiggLifecycle) port (what the lifecycle sync
//! changes afterwards).
//!
//! It sends every mutation with an idempotency key, reads an entity back after a 409 and
//! compares every answer with what was asked, retries transient failures with full-jitter
//! backoff inside the caller's deadline, and keeps client-side rate limits per operation and
//! per customer or subscription, in memory or shared by every instance (with a share of each
//! operation's quota kept for API requests).
//! The contract it follows is `docs/stigg.md`.

mod budget;
mod checks;
mod client;
mod config;
mod entity_limit;
mod error;
mod gateway;
mod lifecycle;
mod observer;
mod operation;
mod rate_limit;
mod wire;

pub use budget::{BudgetError, Choice, Draw, SharedBudget, Take};
pub use config::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP, DEFAULT_BASE_URL,
    DEFAULT_CALLS_PER_MINUTE, DEFAULT_INTERACTIVE_SHARE_PERCENT, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MUTATIONS_PER_ENTITY_PER_MINUTE, StiggConfig, default_user_agent, shown_url,
};
pub use gateway::{GatewayBuildError, HttpStiggGateway, HttpStiggGatewayBuilder, parse_base_url};
pub use observer::{BudgetEvent, CallEvent, CallObserver, CallOutcome};
pub use onboarding_adapters_http::{Jitter, Sleeper};
pub use operation::Operation;
pub use rate_limit::Caller;
