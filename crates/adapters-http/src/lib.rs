//! What the service's HTTP adapters (Stigg, Stripe) share about calling an API that fails now
//! and then: one attempt sent and classified (final answer or transient failure), the retry
//! schedule (exponential backoff with full jitter, cut at the caller's deadline) and the hooks
//! that wait and jitter, the server's `Retry-After`, a capped read of an answer, a base URL
//! checked once, and text from a server made safe to show.
//!
//! Each adapter keeps its own attempt loop: which answers are final, what they become, and
//! what an API adds (rate limits, idempotency keys, `Stripe-Should-Retry`) are its own business.

mod answer;
mod attempt;
mod retry;
mod text;

pub use answer::{MAX_ANSWER_BYTES, is_transient_status, read_capped, transport_failure};
pub use attempt::{Answer, Attempt, Transient, attempt};
pub use retry::{
    FullJitter, Jitter, RetrySchedule, Sleeper, TokioSleeper, backoff_ceiling, retry_after,
};
pub use text::{clean, human, millis, parse_base_url, shown_url};
