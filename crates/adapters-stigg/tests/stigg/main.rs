//! Integration tests of the Stigg adapter: against wiremock fixtures of Stigg's documented
//! answers, and against the bundled Stigg emulator.

// clippy.toml's allow-*-in-tests reaches only #[test] functions, not this crate's helpers;
// in a test, a set-up step that fails should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conflicts;
mod emulator;
mod errors;
mod lifecycle;
mod lifecycle_emulator;
mod logging;
mod rate_limit;
mod requests;
mod retries;
mod support;
