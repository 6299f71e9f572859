//! Retry mechanics: how long to wait between attempts, how to wait, and what a server's
//! `Retry-After` headers ask for.
//!
//! Sleeping and the jitter source are traits so that tests can record the exact delays
//! without waiting real time; the defaults are [`TokioSleeper`] and [`FullJitter`].

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Waits. Used for backoff between attempts and for rate-limit waits.
#[async_trait]
pub trait Sleeper: Send + Sync {
    async fn sleep(&self, duration: Duration);
}

/// The real sleeper: `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Picks the backoff sleep given its ceiling. The result should be in `[0, ceiling]`; the
/// schedule clamps it to the ceiling anyway.
///
/// Any `Fn(Duration) -> Duration + Send + Sync` is a `Jitter`, which keeps test doubles short.
pub trait Jitter: Send + Sync {
    fn pick(&self, ceiling: Duration) -> Duration;
}

impl<F> Jitter for F
where
    F: Fn(Duration) -> Duration + Send + Sync,
{
    fn pick(&self, ceiling: Duration) -> Duration {
        self(ceiling)
    }
}

/// "Full jitter": uniformly random in `[0, ceiling]`, so that clients failing together do not
/// retry together.
#[derive(Debug, Clone, Copy, Default)]
pub struct FullJitter;

impl Jitter for FullJitter {
    fn pick(&self, ceiling: Duration) -> Duration {
        let max = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=max))
    }
}

/// The upper bound of the backoff sleep after failed attempt `failed_attempt` (1-based):
/// `min(cap, base * 2^(failed_attempt - 1))`.
pub fn backoff_ceiling(base: Duration, cap: Duration, failed_attempt: u32) -> Duration {
    let exponent = failed_attempt.saturating_sub(1);
    let factor = 1u32.checked_shl(exponent).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(cap)
}

/// How many attempts a call gets and how long it waits between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Attempts per call, the first one included; 0 is treated as 1.
    pub max_attempts: u32,
    /// First backoff ceiling; it doubles after every failed attempt, up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

impl RetrySchedule {
    /// `max_attempts`, at least 1.
    pub fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// See [`backoff_ceiling`].
    pub fn ceiling(&self, failed_attempt: u32) -> Duration {
        backoff_ceiling(self.backoff_base, self.backoff_cap, failed_attempt)
    }

    /// The sleep before the attempt that follows failed attempt `failed_attempt` (1-based), or
    /// `None` when there is none: no attempt is left, or the next one could not start before
    /// `deadline`. The server's `hinted` delay (`Retry-After`) wins over the jittered backoff,
    /// and one that outlasts the deadline ends the call at once rather than being cut short.
    pub fn next_delay(
        &self,
        failed_attempt: u32,
        hinted: Option<Duration>,
        jitter: &dyn Jitter,
        deadline: Instant,
    ) -> Option<Duration> {
        if failed_attempt >= self.attempts() {
            return None;
        }
        let delay = hinted.unwrap_or_else(|| {
            let ceiling = self.ceiling(failed_attempt);
            jitter.pick(ceiling).min(ceiling)
        });
        Instant::now()
            .checked_add(delay)
            .is_some_and(|wake| wake < deadline)
            .then_some(delay)
    }
}

const RETRY_AFTER_MS: &str = "retry-after-ms";

/// The delay the server asks for, if any: `retry-after-ms` (milliseconds) first, then
/// `Retry-After` (seconds or an HTTP date, relative to `now`). Unparseable or negative values
/// are ignored; a date in the past means "now".
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header(RETRY_AFTER_MS).and_then(parse_non_negative) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let value = header(RETRY_AFTER.as_str())?;
    if let Some(seconds) = parse_non_negative(value) {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let at = parse_http_date(value)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

fn parse_non_negative(value: &str) -> Option<f64> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// The three formats RFC 9110 allows for an HTTP date (IMF-fixdate, RFC 850, asctime).
fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc2822(value) {
        return Some(at.with_timezone(&Utc));
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2015-10-21T07:27:50Z")
            .map(|d| d.with_timezone(&Utc))
            .expect("a valid RFC 3339 date")
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn schedule(max_attempts: u32) -> RetrySchedule {
        RetrySchedule {
            max_attempts,
            backoff_base: ms(200),
            backoff_cap: ms(5000),
        }
    }

    #[test]
    fn reads_seconds_and_milliseconds() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")]), now()),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")]), now()),
            Some(ms(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250")]), now()),
            Some(ms(250))
        );
    }

    #[test]
    fn milliseconds_win_over_seconds() {
        let both = headers(&[("retry-after", "10"), ("retry-after-ms", "30")]);
        assert_eq!(retry_after(&both, now()), Some(ms(30)));
    }

    #[test]
    fn reads_http_dates_relative_to_now() {
        for date in [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28:00 2015",
        ] {
            let map = headers(&[("retry-after", date)]);
            assert_eq!(
                retry_after(&map, now()),
                Some(Duration::from_secs(10)),
                "{date}"
            );
        }
        let past = headers(&[("retry-after", "Wed, 21 Oct 2015 07:00:00 GMT")]);
        assert_eq!(retry_after(&past, now()), Some(Duration::ZERO));
    }

    #[test]
    fn ignores_garbage() {
        for bad in ["soon", "-1", "NaN", "inf", ""] {
            assert_eq!(
                retry_after(&headers(&[("retry-after", bad)]), now()),
                None,
                "{bad}"
            );
        }
        // A bad retry-after-ms falls back to Retry-After.
        let map = headers(&[("retry-after-ms", "x"), ("retry-after", "3")]);
        assert_eq!(retry_after(&map, now()), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&HeaderMap::new(), now()), None);
    }

    #[test]
    fn full_jitter_stays_within_the_ceiling() {
        let ceiling = ms(400);
        for _ in 0..1000 {
            assert!(FullJitter.pick(ceiling) <= ceiling);
        }
        assert_eq!(FullJitter.pick(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn closures_are_jitter_sources() {
        let half = |ceiling: Duration| ceiling / 2;
        assert_eq!(half.pick(ms(200)), ms(100));
    }

    #[test]
    fn backoff_ceiling_doubles_up_to_the_cap() {
        let ceilings: Vec<_> = (1..=7).map(|n| schedule(3).ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(3200),
                ms(5000),
                ms(5000)
            ]
        );
        assert_eq!(backoff_ceiling(ms(200), ms(5000), 0), ms(200));
        assert_eq!(backoff_ceiling(ms(200), ms(5000), 200), ms(5000));
    }

    #[test]
    fn next_delay_jitters_under_the_ceiling_while_attempts_are_left() {
        let far = Instant::now() + Duration::from_secs(60);
        let twice = |ceiling: Duration| ceiling * 2;
        let ceiling = |ceiling: Duration| ceiling;
        let schedule = schedule(3);
        assert_eq!(schedule.next_delay(1, None, &ceiling, far), Some(ms(200)));
        // A jitter source overshooting is clamped to the ceiling.
        assert_eq!(schedule.next_delay(2, None, &twice, far), Some(ms(400)));
        assert_eq!(schedule.next_delay(3, None, &ceiling, far), None);
    }

    #[test]
    fn the_servers_hint_wins_but_never_outlasts_the_deadline() {
        let ceiling = |ceiling: Duration| ceiling;
        let soon = Instant::now() + Duration::from_secs(1);
        let schedule = schedule(5);
        assert_eq!(
            schedule.next_delay(1, Some(ms(700)), &ceiling, soon),
            Some(ms(700))
        );
        assert_eq!(schedule.next_delay(1, Some(ms(2000)), &ceiling, soon), None);
        assert_eq!(schedule.next_delay(1, None, &ceiling, Instant::now()), None);
    }

    #[test]
    fn zero_attempts_means_one() {
        let ceiling = |ceiling: Duration| ceiling;
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(schedule(0).attempts(), 1);
        assert_eq!(schedule(0).next_delay(1, None, &ceiling, far), None);
    }
}
