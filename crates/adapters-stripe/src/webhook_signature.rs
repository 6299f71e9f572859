//! Stripe's webhook signature: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`,
//! where each `v1` is the hex HMAC-SHA256, keyed with the endpoint's signing secret, of the
//! bytes `"<t>." + <raw body>`.
//!
//! A delivery is authentic when any `v1` matches for any configured secret (several secrets
//! are live while one is rotated, and Stripe sends one `v1` per live secret), and `t` is
//! within the tolerance of now in either direction (a replayed or pre-dated delivery is
//! refused). Other schemes (`v0`) are ignored. The MAC is checked in constant time over the
//! raw bytes, never over re-serialised JSON.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The endpoint's signing secrets (`whsec_…`), from a comma-separated list. Never shown.
#[derive(Clone)]
pub struct WebhookSecrets(Vec<SecretString>);

impl WebhookSecrets {
    /// Parses `whsec_a,whsec_b`; empty items are dropped. `None` when no secret is left.
    pub fn parse(list: &str) -> Option<Self> {
        let secrets: Vec<SecretString> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        (!secrets.is_empty()).then_some(Self(secrets))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecrets({} redacted)", self.0.len())
    }
}

/// Why a delivery is not accepted as Stripe's. Every variant is a 400 for the caller; the
/// variants tell operators which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header has no valid timestamp")]
    NoTimestamp,
    #[error("the Stripe-Signature header has no v1 signature")]
    NoSignature,
    #[error("no v1 signature matches the payload for any configured secret")]
    Mismatch,
    #[error("the signature timestamp is {seconds} s away from now (tolerance {tolerance} s)")]
    OutsideTolerance { seconds: u64, tolerance: u64 },
}

/// The parts of a header this scheme reads.
struct Header<'a> {
    timestamp: i64,
    /// Decoded `v1` values; one that is not hex can match nothing and is dropped.
    signatures: Vec<Vec<u8>>,
    timestamp_text: &'a str,
}

fn parse_header(header: &str) -> Result<Header<'_>, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    let mut saw_v1 = false;
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => timestamp = Some(value),
            "v1" => {
                saw_v1 = true;
                if let Some(bytes) = decode_hex(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp_text = timestamp.ok_or(SignatureError::NoTimestamp)?;
    let timestamp = timestamp_text
        .parse::<i64>()
        .map_err(|_| SignatureError::NoTimestamp)?;
    if !saw_v1 {
        return Err(SignatureError::NoSignature);
    }
    Ok(Header {
        timestamp,
        signatures,
        timestamp_text,
    })
}

/// Checks a delivery. `header` is the `Stripe-Signature` value (`None` when absent), `now`
/// and the result are unix seconds: the signed timestamp, once accepted.
pub fn verify(
    header: Option<&str>,
    payload: &[u8],
    secrets: &WebhookSecrets,
    now: i64,
    tolerance: Duration,
) -> Result<i64, SignatureError> {
    let header = parse_header(header.ok_or(SignatureError::Missing)?)?;
    // The MAC first: an attacker learns nothing about the clock check from a forged header.
    let matched = secrets.0.iter().any(|secret| {
        let mac = mac_over(secret.expose_secret(), header.timestamp_text, payload);
        header
            .signatures
            .iter()
            // `verify_slice` compares in constant time; never compare the hex text with `==`.
            .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let seconds = now.abs_diff(header.timestamp);
    if seconds > tolerance.as_secs() {
        return Err(SignatureError::OutsideTolerance {
            seconds,
            tolerance: tolerance.as_secs(),
        });
    }
    Ok(header.timestamp)
}

/// The `Stripe-Signature` value Stripe would send for `payload` at `timestamp`, signed with
/// each secret in turn (one `v1` per secret, as during a rotation).
pub fn sign(payload: &[u8], secrets: &WebhookSecrets, timestamp: i64) -> String {
    let t = timestamp.to_string();
    let mut header = format!("t={t}");
    for secret in &secrets.0 {
        let tag = mac_over(secret.expose_secret(), &t, payload)
            .finalize()
            .into_bytes();
        header.push_str(",v1=");
        header.push_str(&encode_hex(&tag));
    }
    header
}

fn mac_over(secret: &str, timestamp: &str, payload: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}
