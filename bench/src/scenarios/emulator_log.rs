//! The request log of the emulator limited to the quota (`GET /_emulator/requests`), read
//! after scenarios e and h: the calls by status, the 429s, and the pace of each mutating
//! operation.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::service::Emulator;
use super::sync_events::{millis, time};
use crate::http;

/// The mutating operations the quota applies to, each on its own.
pub(super) const CUSTOMERS: &str = "/api/v1/customers";
pub(super) const SUBSCRIPTIONS: &str = "/api/v1/subscriptions";

/// One logged call.
pub(super) struct Call {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) status: u64,
    pub(super) at: Option<DateTime<Utc>>,
    pub(super) correlation_id: String,
    /// The Stripe id the created entity is billed under (`billingId` of the body).
    pub(super) billing_id: String,
}

impl Call {
    /// An accepted `POST` on `path`: one call of that operation's quota, used.
    pub(super) fn created(&self, path: &str) -> bool {
        self.method == "POST" && self.path == path && (200..300).contains(&self.status)
    }
}

pub(super) struct RequestLog {
    pub(super) calls: Vec<Call>,
}

/// The pace of one operation: calls per minute between its first and last call, and the
/// gaps between consecutive calls.
pub(super) struct Pace {
    pub(super) calls: u64,
    pub(super) per_minute: f64,
    /// Gaps between consecutive calls, ms: 1st, 50th and 99th percentile.
    pub(super) gaps_ms: [f64; 3],
    /// Most calls in any one-minute window (what the emulator's sliding window counts).
    pub(super) busiest_minute: u64,
}

impl RequestLog {
    pub(super) fn read(emulator: &Emulator) -> anyhow::Result<Self> {
        let log = http::get(
            emulator.addr,
            "/_emulator/requests",
            Duration::from_secs(60),
        )?;
        let requests: Vec<Value> =
            serde_json::from_slice(&log.body).context("bad emulator request log")?;
        let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
        let calls = requests
            .iter()
            .map(|r| Call {
                method: text(&r["method"]),
                path: text(&r["path"]),
                status: r["status"].as_u64().unwrap_or(0),
                at: time(&r["at"]),
                correlation_id: text(&r["correlationId"]),
                billing_id: text(&r["body"]["billingId"]),
            })
            .collect();
        Ok(Self { calls })
    }

    /// Calls counted by `METHOD path status`, in the order first seen.
    pub(super) fn by_status(&self) -> Value {
        let mut counts: Vec<(String, u64)> = Vec::new();
        for c in &self.calls {
            let key = format!("{} {} {}", c.method, c.path, c.status);
            match counts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => counts.push((key, 1)),
            }
        }
        Value::Object(counts.into_iter().map(|(k, n)| (k, json!(n))).collect())
    }

    pub(super) fn too_many(&self) -> u64 {
        self.calls.iter().filter(|c| c.status == 429).count() as u64
    }

    /// When the accepted calls of the operation on `path` that `keep` selects were made,
    /// in order.
    pub(super) fn created_at(
        &self,
        path: &str,
        keep: impl Fn(&Call) -> bool,
    ) -> Vec<DateTime<Utc>> {
        let mut at: Vec<DateTime<Utc>> = self
            .calls
            .iter()
            .filter(|c| c.created(path) && keep(c))
            .filter_map(|c| c.at)
            .collect();
        at.sort();
        at
    }
}

/// The pace of calls made at `at` (sorted).
pub(super) fn pace(at: &[DateTime<Utc>]) -> Pace {
    let mut gaps: Vec<f64> = at.windows(2).map(|w| millis(w[1], w[0])).collect();
    gaps.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        let i = ((gaps.len() as f64 - 1.0).max(0.0) * q).round() as usize;
        gaps.get(i).copied().unwrap_or(0.0)
    };
    let per_minute = match (at.first(), at.last()) {
        (Some(first), Some(last)) if at.len() > 1 => {
            (at.len() - 1) as f64 / (millis(*last, *first) / 1e3) * 60.0
        }
        _ => 0.0,
    };
    Pace {
        calls: at.len() as u64,
        per_minute,
        gaps_ms: [pick(0.01), pick(0.5), pick(0.99)],
        busiest_minute: busiest(at, chrono::Duration::seconds(60)),
    }
}

/// Most calls in any window of `width` (sorted times).
fn busiest(at: &[DateTime<Utc>], width: chrono::Duration) -> u64 {
    let mut first = 0;
    let mut most = 0;
    for (last, t) in at.iter().enumerate() {
        while *t - at[first] >= width {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: &[i64]) -> Vec<DateTime<Utc>> {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        ms.iter()
            .map(|m| start + chrono::Duration::milliseconds(*m))
            .collect()
    }

    #[test]
    fn pace_counts_calls_per_minute_between_the_first_and_the_last() {
        // 11 calls 100 ms apart: 10 gaps in 1 s, 600 a minute.
        let p = pace(&at(&(0..=10).map(|i| i * 100).collect::<Vec<_>>()));
        assert_eq!(p.calls, 11);
        assert!((p.per_minute - 600.0).abs() < 1e-6);
        assert_eq!(p.gaps_ms, [100.0, 100.0, 100.0]);
        assert_eq!(pace(&at(&[5])).per_minute, 0.0);
    }

    #[test]
    fn busiest_minute_is_a_sliding_window() {
        // Three calls within a minute, then one exactly a minute after the first.
        let calls = at(&[0, 10_000, 59_999, 60_000]);
        assert_eq!(busiest(&calls, chrono::Duration::seconds(60)), 3);
        assert_eq!(pace(&calls).busiest_minute, 3);
        assert_eq!(busiest(&[], chrono::Duration::seconds(60)), 0);
    }
}
