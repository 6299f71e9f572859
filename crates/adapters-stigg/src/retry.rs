//! Retry mechanics: how long to wait between attempts, how to wait, and what Stigg's
//! `Retry-After` headers ask for. They are the same for every HTTP adapter, so they live in
//! `onboarding-adapters-http`; this module names what the Stigg adapter uses of them.
//!
//! Sleeping and the jitter source are traits so that tests can record the exact delays
//! without waiting real time; the defaults are [`TokioSleeper`] and [`FullJitter`].

pub(crate) use onboarding_adapters_http::{FullJitter, TokioSleeper};
pub use onboarding_adapters_http::{Jitter, Sleeper};
