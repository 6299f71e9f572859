//! Stigg-like rate limits: a one-minute sliding window per mutating operation and one per
//! entity (a customer or a subscription), shared by every operation on that entity, as
//! Stigg's entity buckets are.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

const WINDOW: Duration = Duration::from_secs(60);

/// Limits applied to the mutating API calls (reads are never limited).
///
/// JSON (admin route): `{"perOperationPerMinute": 250, "perCustomerPerMinute": 30,
/// "retryAfter": "seconds"}`; `retryAfter` is optional and defaults to `"seconds"`.
/// A limit of 0 turns that dimension off.
///
/// `per_customer_per_minute` is Stigg's entity limit, whatever the entity: a customer counts
/// its own calls and its subscription creates; a subscription its patches and cancels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    pub per_operation_per_minute: u32,
    pub per_customer_per_minute: u32,
    #[serde(default)]
    pub retry_after: RetryAfterHint,
}

impl Default for RateLimit {
    /// Stigg's published limits: 250 calls/min per mutation, 30/min per entity.
    fn default() -> Self {
        Self {
            per_operation_per_minute: 250,
            per_customer_per_minute: 30,
            retry_after: RetryAfterHint::Seconds,
        }
    }
}

/// Which hint a 429 carries: none (as Stigg's Edge API), `Retry-After: <seconds>` or
/// `retry-after-ms: <ms>`. JSON: `"none"`, `"seconds"`, `"millis"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RetryAfterHint {
    None,
    #[default]
    Seconds,
    Millis,
}

impl RetryAfterHint {
    /// The header telling a client to wait `wait`, rounded up so that it is never too early.
    pub(crate) fn header(self, wait: Duration) -> Option<(&'static str, String)> {
        match self {
            Self::None => None,
            Self::Seconds => Some((
                "retry-after",
                wait.as_secs_f64().ceil().max(1.0).to_string(),
            )),
            Self::Millis => Some((
                "retry-after-ms",
                wait.as_micros().div_ceil(1000).max(1).to_string(),
            )),
        }
    }
}

/// Calls admitted in the last minute, per operation and per entity (`customer:{id}` or
/// `subscription:{id}`).
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    operations: HashMap<&'static str, VecDeque<Instant>>,
    entities: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    /// Admits one call, or returns how long until it would be admitted. A refused call is not
    /// counted, so clients that back off properly are not punished for having tried.
    pub(crate) fn admit(
        &mut self,
        limit: &RateLimit,
        operation: &'static str,
        entity: Option<&str>,
        now: Instant,
    ) -> Result<(), Duration> {
        let operation_window = self.operations.entry(operation).or_default();
        let operation_wait =
            wait_before_next(operation_window, limit.per_operation_per_minute, now);
        let mut entity_window = match entity {
            Some(id) if limit.per_customer_per_minute > 0 => {
                Some(self.entities.entry(id.to_owned()).or_default())
            }
            _ => None,
        };
        let entity_wait = entity_window
            .as_deref_mut()
            .and_then(|window| wait_before_next(window, limit.per_customer_per_minute, now));
        if let Some(wait) = operation_wait.max(entity_wait) {
            return Err(wait);
        }
        if limit.per_operation_per_minute > 0 {
            operation_window.push_back(now);
        }
        if let Some(window) = entity_window {
            window.push_back(now);
        }
        Ok(())
    }
}

/// Drops calls older than the window, then says how long until one more call fits, if it
/// does not fit now.
fn wait_before_next(window: &mut VecDeque<Instant>, max: u32, now: Instant) -> Option<Duration> {
    while window
        .front()
        .is_some_and(|at| now.saturating_duration_since(*at) >= WINDOW)
    {
        window.pop_front();
    }
    if max == 0 || window.len() < max as usize {
        return None;
    }
    // The call that frees a slot is the one `max` places from the end.
    let freeing = window.get(window.len() - max as usize)?;
    Some(WINDOW.saturating_sub(now.saturating_duration_since(*freeing)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_operation: u32, per_customer: u32) -> RateLimit {
        RateLimit {
            per_operation_per_minute: per_operation,
            per_customer_per_minute: per_customer,
            retry_after: RetryAfterHint::Seconds,
        }
    }

    #[test]
    fn operation_window_refuses_the_call_past_the_limit_until_a_minute_has_passed() {
        let mut limiter = RateLimiter::default();
        let start = Instant::now();
        let limit = limit(2, 0);
        assert!(limiter.admit(&limit, "op", None, start).is_ok());
        assert!(
            limiter
                .admit(&limit, "op", None, start + Duration::from_secs(10))
                .is_ok()
        );
        let wait = limiter.admit(&limit, "op", None, start + Duration::from_secs(20));
        assert_eq!(wait, Err(Duration::from_secs(40)));
        assert!(limiter.admit(&limit, "other", None, start).is_ok());
        assert!(limiter.admit(&limit, "op", None, start + WINDOW).is_ok());
    }

    #[test]
    fn entity_window_is_shared_across_operations_and_refusals_are_not_counted() {
        let mut limiter = RateLimiter::default();
        let now = Instant::now();
        let limit = limit(0, 1);
        assert!(limiter.admit(&limit, "a", Some("org_1"), now).is_ok());
        assert!(limiter.admit(&limit, "b", Some("org_1"), now).is_err());
        assert!(limiter.admit(&limit, "b", Some("org_2"), now).is_ok());
        assert!(limiter.admit(&limit, "b", None, now).is_ok());
        assert!(
            limiter
                .admit(&limit, "a", Some("org_1"), now + WINDOW)
                .is_ok()
        );
    }

    #[test]
    fn hints_round_up() {
        let wait = Duration::from_millis(1500);
        assert_eq!(RetryAfterHint::None.header(wait), None);
        assert_eq!(
            RetryAfterHint::Seconds.header(wait),
            Some(("retry-after", "2".to_owned()))
        );
        assert_eq!(
            RetryAfterHint::Millis.header(wait),
            Some(("retry-after-ms", "1500".to_owned()))
        );
    }
}
