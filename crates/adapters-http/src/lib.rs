//! What the service's HTTP adapters (Stigg, Stripe) share about calling an API that fails now
//! and then: the pooled client and the hooks it waits and jitters through, one attempt sent and
//! classified (final answer or transient failure), the retry schedule (exponential backoff with
//! full jitter, cut at the caller's deadline), the server's `Retry-After`, a capped read of an
//! answer, a base URL checked once, and text from a server made safe to show.
//!
//! Each adapter keeps its own attempt loop: which answers are final, what they become, and
//! what an API adds (rate limits, idempotency keys, `Stripe-Should-Retry`) are its own business.
//! The `test-support` feature adds the test doubles both adapters' tests use.

mod answer;
mod attempt;
mod client;
mod retry;
mod text;

#[cfg(feature = "test-support")]
pub mod test_support;

pub use answer::{MAX_ANSWER_BYTES, is_transient_status, read_capped, transport_failure};
pub use attempt::{Answer, Attempt, Transient, attempt};
pub use client::{ClientBuildError, RetryHooks, pooled_client, secret_header};
pub use retry::{
    FullJitter, Jitter, RetrySchedule, Sleeper, TokioSleeper, backoff_ceiling, retry_after,
};
pub use text::{
    MAX_CODE_CHARS, MAX_MESSAGE_CHARS, Refusal, clean, human, millis, parse_base_url, shown_url,
};
