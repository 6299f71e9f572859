//! An in-memory emulator of the Stigg REST v1 subset that onboarding calls (customers and
//! subscriptions: provisioning, then patches, cancellations and archiving), served with
//! actix-web on a loopback port.
//!
//! It answers with Stigg's status codes and `{code, message}` error bodies, honours
//! `Idempotency-Key`, can enforce Stigg-like rate limits and can be scripted to fail (status
//! codes, delays, truncated bodies, dropped connections), so that the Stigg adapter's retry and
//! error handling can be tested without the network. Tests and humans drive it through the
//! [`Emulator`] handle or the `/_emulator/*` admin routes.

mod config;
mod emulator;
mod faults;
mod fields;
mod lifecycle;
mod provisioning;
mod rate_limit;
mod reply;
mod routes;
mod server;
mod store;
mod view;

pub use config::{BillingPeriod, DEFAULT_API_KEY, EmulatorConfig, PlanSpec, Pricing};
pub use emulator::{Emulator, EntityKind, LoggedRequest};
pub use emulator_kit::Scoped;
pub use faults::{Fault, FaultAction};
pub use rate_limit::{RateLimit, RetryAfterHint};
pub use server::RunningEmulator;
pub use view::{SubscriptionStatus, SubscriptionView};
