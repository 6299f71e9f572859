//! The onboarding domain: identifiers parsed at the edge, the organizations and subscriptions
//! the onboarding stories create, the ports through which the domain reaches databases,
//! Stigg and the clock, and the use cases built on them.
//!
//! It does no I/O itself and depends on no web, database or HTTP-client crate; adapters
//! implement the ports in their own crates.

pub mod input;
pub mod model;
pub mod ports;
pub mod text;
pub mod use_cases;
