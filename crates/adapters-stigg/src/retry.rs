//! Retry mechanics: how long to wait between attempts, how to wait, and what Stigg's
//! `Retry-After` headers ask for.
//!
//! Sleeping and the jitter source are traits so that tests can record the exact delays
//! without waiting real time; the defaults are [`TokioSleeper`] and [`FullJitter`].

use std::time::Duration;

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
pub(crate) struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Picks the backoff sleep given its ceiling. The result should be in `[0, ceiling]`; the
/// client clamps it to the ceiling anyway.
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
pub(crate) struct FullJitter;

impl Jitter for FullJitter {
    fn pick(&self, ceiling: Duration) -> Duration {
        let max = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=max))
    }
}

const RETRY_AFTER_MS: &str = "retry-after-ms";

/// The delay Stigg asks for, if any: `retry-after-ms` (milliseconds) first, then `Retry-After`
/// (seconds or an HTTP date, relative to `now`). Unparseable or negative values are ignored;
/// a date in the past means "now".
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
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

    #[test]
    fn reads_seconds_and_milliseconds() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")]), now()),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")]), now()),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250")]), now()),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn milliseconds_win_over_seconds() {
        let both = headers(&[("retry-after", "10"), ("retry-after-ms", "30")]);
        assert_eq!(retry_after(&both, now()), Some(Duration::from_millis(30)));
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
        let ceiling = Duration::from_millis(400);
        for _ in 0..1000 {
            assert!(FullJitter.pick(ceiling) <= ceiling);
        }
        assert_eq!(FullJitter.pick(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn closures_are_jitter_sources() {
        let half = |ceiling: Duration| ceiling / 2;
        assert_eq!(
            half.pick(Duration::from_millis(200)),
            Duration::from_millis(100)
        );
    }
}
