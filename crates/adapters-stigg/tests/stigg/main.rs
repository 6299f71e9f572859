//! Integration tests of the Stigg adapter: against wiremock fixtures of Stigg's documented
//! answers, and against the bundled Stigg emulator.

mod conflicts;
mod emulator;
mod errors;
mod logging;
mod rate_limit;
mod requests;
mod retries;
mod support;
