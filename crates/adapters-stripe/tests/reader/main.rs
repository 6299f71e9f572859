//! Integration tests of the Stripe read client, over real HTTP: against the bundled Stripe
//! emulator served in-process, and against wiremock for the headers the emulator does not
//! script (`Retry-After`, `Stripe-Should-Retry`).

// clippy.toml's allow-*-in-tests reaches only #[test] functions, not this crate's helpers;
// in a test, a set-up step that fails should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod emulator;
mod faults;
mod headers;
mod support;
