//! The webhook signature scheme against an independent HMAC-SHA256 (aws-lc-rs), and every way
//! a delivery can fail it.

// clippy.toml's allow-*-in-tests reaches only #[test] functions, not this crate's helpers;
// in a test, a set-up step that fails should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aws_lc_rs::hmac;
use onboarding_adapters_stripe::{SignatureError, WebhookSecrets, sign, verify};
use proptest::prelude::*;

const TOLERANCE: Duration = Duration::from_secs(300);
const NOW: i64 = 1_764_806_400;
const PAYLOAD: &[u8] =
    br#"{"id":"evt_1","type":"customer.subscription.updated","data":{"object":{"id":"sub_A1"}}}"#;

fn secrets(list: &str) -> WebhookSecrets {
    WebhookSecrets::parse(list).expect("at least one secret")
}

/// `v1` as a second implementation computes it: hex HMAC-SHA256 of "<t>.<payload>".
fn independent_v1(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(payload);
    hmac::sign(&key, &signed)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check(header: &str, secrets_list: &str, now: i64) -> Result<i64, SignatureError> {
    verify(
        Some(header),
        PAYLOAD,
        &secrets(secrets_list),
        now,
        TOLERANCE,
    )
}

#[test]
fn a_signature_computed_independently_is_accepted_and_ours_is_the_same() {
    let v1 = independent_v1("whsec_test", NOW, PAYLOAD);
    let header = format!("t={NOW},v1={v1}");
    assert_eq!(check(&header, "whsec_test", NOW), Ok(NOW));
    assert_eq!(sign(PAYLOAD, &secrets("whsec_test"), NOW), header);
}

#[test]
fn any_v1_for_any_secret_matches_during_a_rotation() {
    let old = independent_v1("whsec_old", NOW, PAYLOAD);
    let new = independent_v1("whsec_new", NOW, PAYLOAD);
    // Stripe signs with both secrets while both are live; we may know either or both.
    let both = format!("t={NOW},v1={new},v1={old}");
    assert_eq!(check(&both, "whsec_old", NOW), Ok(NOW));
    assert_eq!(check(&both, "whsec_new", NOW), Ok(NOW));
    // Only the old signature sent, both secrets configured.
    let only_old = format!("t={NOW},v1={old}");
    assert_eq!(check(&only_old, "whsec_new, whsec_old", NOW), Ok(NOW));
    assert_eq!(
        check(&only_old, "whsec_new", NOW),
        Err(SignatureError::Mismatch)
    );
    // A first v1 that is wrong (or not even hex) does not hide a right one.
    let mixed = format!("t={NOW},v1=zz,v1={},v1={old}", "0".repeat(64));
    assert_eq!(check(&mixed, "whsec_old", NOW), Ok(NOW));
}

#[test]
fn a_tampered_body_or_another_secret_is_a_mismatch() {
    let header = sign(PAYLOAD, &secrets("whsec_test"), NOW);
    let mut tampered = PAYLOAD.to_vec();
    tampered[10] ^= 1;
    assert_eq!(
        verify(
            Some(&header),
            &tampered,
            &secrets("whsec_test"),
            NOW,
            TOLERANCE
        ),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(&header, "whsec_other", NOW),
        Err(SignatureError::Mismatch)
    );
    // The timestamp is signed too: moving it breaks the signature.
    let moved = header.replacen(&format!("t={NOW}"), &format!("t={}", NOW + 1), 1);
    assert_eq!(
        check(&moved, "whsec_test", NOW),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn stale_and_future_timestamps_are_refused_at_the_tolerance() {
    let at = |t: i64| sign(PAYLOAD, &secrets("whsec_test"), t);
    assert_eq!(check(&at(NOW - 300), "whsec_test", NOW), Ok(NOW - 300));
    assert_eq!(check(&at(NOW + 300), "whsec_test", NOW), Ok(NOW + 300));
    assert_eq!(
        check(&at(NOW - 301), "whsec_test", NOW),
        Err(SignatureError::OutsideTolerance {
            seconds: 301,
            tolerance: 300
        })
    );
    assert_eq!(
        check(&at(NOW + 3600), "whsec_test", NOW),
        Err(SignatureError::OutsideTolerance {
            seconds: 3600,
            tolerance: 300
        })
    );
}

#[test]
fn the_configured_tolerance_is_the_one_applied() {
    let header = |t: i64| sign(PAYLOAD, &secrets("whsec_test"), t);
    let ten = Duration::from_secs(10);
    let check_at = |t: i64| verify(Some(&header(t)), PAYLOAD, &secrets("whsec_test"), NOW, ten);
    assert_eq!(check_at(NOW - 10), Ok(NOW - 10));
    assert_eq!(
        check_at(NOW - 11),
        Err(SignatureError::OutsideTolerance {
            seconds: 11,
            tolerance: 10
        })
    );
}

#[test]
fn other_schemes_beside_a_v1_are_ignored() {
    let v1 = independent_v1("whsec_test", NOW, PAYLOAD);
    assert_eq!(
        check(
            &format!("t={NOW},v0=deadbeef,v1={v1},v2=zz"),
            "whsec_test",
            NOW
        ),
        Ok(NOW)
    );
}

#[test]
fn malformed_headers_name_what_is_missing() {
    let v1 = independent_v1("whsec_test", NOW, PAYLOAD);
    assert_eq!(
        verify(None, PAYLOAD, &secrets("whsec_test"), NOW, TOLERANCE),
        Err(SignatureError::Missing)
    );
    for (header, expected) in [
        (String::new(), SignatureError::NoTimestamp),
        (format!("v1={v1}"), SignatureError::NoTimestamp),
        (format!("t=soon,v1={v1}"), SignatureError::NoTimestamp),
        (format!("t={NOW}"), SignatureError::NoSignature),
        (format!("t={NOW},v0={v1}"), SignatureError::NoSignature),
        (format!("t={NOW},v1=not-hex"), SignatureError::Mismatch),
        (
            format!("t={NOW},v1={}", &v1[..62]),
            SignatureError::Mismatch,
        ),
    ] {
        assert_eq!(
            check(&header, "whsec_test", NOW),
            Err(expected),
            "{header:?}"
        );
    }
    // Spaces after the commas, as some proxies rewrite headers, are tolerated.
    assert_eq!(
        check(&format!("t={NOW}, v1={v1}"), "whsec_test", NOW),
        Ok(NOW)
    );
}

#[test]
fn secrets_are_a_comma_separated_list_and_never_shown() {
    assert!(WebhookSecrets::parse(" , ").is_none());
    let parsed = secrets("whsec_a, whsec_b,");
    assert_eq!(parsed.len(), 2);
    let shown = format!("{parsed:?}");
    assert!(!shown.contains("whsec"), "{shown}");
}

proptest! {
    #[test]
    fn what_we_sign_verifies_and_matches_the_independent_mac(
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
        secret in "whsec_[A-Za-z0-9]{1,40}",
        timestamp in 0i64..4_000_000_000,
        flip in any::<prop::sample::Index>(),
    ) {
        let configured = secrets(&secret);
        let header = sign(&payload, &configured, timestamp);
        prop_assert_eq!(
            &header,
            &format!("t={timestamp},v1={}", independent_v1(&secret, timestamp, &payload))
        );
        prop_assert_eq!(
            verify(Some(&header), &payload, &configured, timestamp, TOLERANCE),
            Ok(timestamp)
        );
        if !payload.is_empty() {
            let mut tampered = payload.clone();
            tampered[flip.index(payload.len())] ^= 0x01;
            prop_assert_eq!(
                verify(Some(&header), &tampered, &configured, timestamp, TOLERANCE),
                Err(SignatureError::Mismatch)
            );
        }
    }
}
