//! The emulator over HTTP, as the Stigg adapter sees it.

// clippy.toml's allow-*-in-tests reaches only #[test] functions, not this crate's helpers;
// in a test, a set-up step that fails should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod lifecycle;
mod support;
