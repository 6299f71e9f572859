//! What the service's HTTP adapters (Stigg, Stripe) share about calling an API that fails now
//! and then: the retry schedule (exponential backoff with full jitter, cut at the caller's
//! deadline), the server's `Retry-After`, which statuses and transport failures deserve another
//! attempt, a capped read of an answer, a base URL checked once, and text from a server made
//! safe to show.
//!
//! Each adapter keeps its own attempt loop: what counts as a final answer, and the error it
//! becomes, is each API's own business.

mod answer;
mod retry;
mod text;

pub use answer::{MAX_ANSWER_BYTES, is_transient_status, read_capped, transport_failure};
pub use retry::{
    FullJitter, Jitter, RetrySchedule, Sleeper, TokioSleeper, backoff_ceiling, retry_after,
};
pub use text::{clean, human, millis, parse_base_url, shown_url};
