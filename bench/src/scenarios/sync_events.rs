//! What scenario g reads besides its load: the Stripe emulator's admin routes, each event's
//! state as the service shows it, the lag histogram, and the quantiles of what it measured.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::service::{API_TOKEN, StripeEmulator};
use crate::http;

/// An event as `GET /api/stripe/events/{id}` shows it.
pub(super) struct Seen {
    pub(super) status: String,
    pub(super) received_at: Option<DateTime<Utc>>,
    pub(super) processed_at: Option<DateTime<Utc>>,
}

/// The `q`-quantile (nearest rank) of sorted values.
pub(super) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(super) fn time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub(super) fn millis(later: DateTime<Utc>, earlier: DateTime<Utc>) -> f64 {
    (later - earlier).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3
}

/// One admin call to the Stripe emulator; its JSON answer.
pub(super) fn admin(
    stripe: &StripeEmulator,
    method: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let body = body.to_string();
    let answer = http::request(
        stripe.addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
        Duration::from_secs(10),
    )?;
    if !(200..300).contains(&answer.status) {
        bail!(
            "the Stripe emulator answered {} to {method} {path}: {}",
            answer.status,
            answer.text()
        );
    }
    serde_json::from_slice(&answer.body)
        .with_context(|| format!("the Stripe emulator's answer to {method} {path} is not JSON"))
}

/// `GET /api/stripe/events/{id}`; `None` for a 404 (never received).
pub(super) fn event_state(service: std::net::SocketAddr, id: &str) -> anyhow::Result<Option<Seen>> {
    let answer = http::request(
        service,
        "GET",
        &format!("/api/stripe/events/{id}"),
        &[("Authorization", &format!("Bearer {API_TOKEN}"))],
        None,
        Duration::from_secs(10),
    )?;
    match answer.status {
        404 => Ok(None),
        200 => {
            let v: Value = serde_json::from_slice(&answer.body)
                .with_context(|| format!("event {id}: the answer is not JSON"))?;
            Ok(Some(Seen {
                status: v["status"].as_str().unwrap_or("?").to_owned(),
                received_at: time(&v["receivedAt"]),
                processed_at: time(&v["processedAt"]),
            }))
        }
        other => bail!(
            "GET /api/stripe/events/{id} answered {other}: {}",
            answer.text()
        ),
    }
}

/// The service's `onboarding_stripe_sync_lag_seconds` histogram so far: count and sum (s).
pub(super) fn lag_histogram(service: std::net::SocketAddr) -> anyhow::Result<(f64, f64)> {
    let metrics = http::get(service, "/metrics", Duration::from_secs(10))?.text();
    let value = |name: &str| {
        metrics
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    Ok((
        value("onboarding_stripe_sync_lag_seconds_count"),
        value("onboarding_stripe_sync_lag_seconds_sum"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((quantile(&v, 0.5) - 50.0).abs() < 1e-9);
        assert!((quantile(&v, 0.99) - 99.0).abs() < 1e-9);
        assert!((quantile(&v, 0.999) - 100.0).abs() < 1e-9);
        assert!((quantile(&[7.0], 0.99) - 7.0).abs() < 1e-9);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn lag_from_the_routes_timestamps() {
        let received = time(&json!("2026-12-04T17:55:03.120Z"));
        let processed = time(&json!("2026-12-04T17:55:03.480Z"));
        let lag = received.zip(processed).map(|(r, p)| millis(p, r));
        assert_eq!(lag, Some(360.0));
    }
}
