//! The Stripe adapter: what the service needs of Stripe's API.
//!
//! - [`StripeClient`] reads subscriptions and customers (`GET /v1/subscriptions/{id}`,
//!   `GET /v1/customers/{id}`, API version [`STRIPE_API_VERSION`]) and implements the
//!   domain's [`StripeReader`](onboarding_domain::ports::StripeReader) port. It retries 408,
//!   429, 5xx, timeouts and broken connections with full-jitter backoff inside the caller's
//!   deadline, honouring `Retry-After` and `Stripe-Should-Retry`; the key never reaches a log
//!   line or an error.
//! - [`webhook_signature`] verifies the `Stripe-Signature` header of a webhook delivery (the
//!   route's authentication) and signs a payload the way Stripe does (for emulators and tests).

mod client;
mod config;
mod error;
pub mod webhook_signature;
mod wire;

pub use client::{StripeBuildError, StripeClient, StripeClientBuilder, parse_api_url};
pub use config::{
    DEFAULT_API_URL, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT, STRIPE_API_VERSION, StripeConfig, default_user_agent,
};
pub use onboarding_adapters_http::{Jitter, Sleeper};
pub use webhook_signature::{SignatureError, WebhookSecrets, sign, verify};
