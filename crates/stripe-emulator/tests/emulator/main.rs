//! The emulator over HTTP, as the service's Stripe client and webhook route will see it.
// A failed unwrap is a failed test here, which is what a test should do with the unexpected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod api;
mod support;
mod webhooks;
