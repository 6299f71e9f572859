//! Fuzzes what `POST /api/stigg/provision` does with a request before looking anything up:
//! reading the trace headers, parsing and validating the body (`parse_request`, the very
//! function the handler calls), building the 400 answer, and the debug-log copy of the body.
//!
//! An input is a request head and body written as text, so seeds stay readable:
//!
//! ```text
//! x-request-id: req-1
//! content-type: application/json
//!
//! {"orgId":"org_8Yp2", ...}
//! ```
//!
//! Header lines up to the first empty line (`\n` or `\r\n`), then the body. Lines that are not
//! a valid header (no `:`, a bad name or value) are dropped, as an HTTP server refuses them
//! before the application sees them; leading and trailing spaces and tabs are not part of a
//! value, as on the wire.
//!
//! Beyond "no panic", it checks what every answer must hold: an accepted request follows every
//! rule, and a refusal names at least one header or field, each once, from the contract's list.

#![no_main]

use std::sync::LazyLock;

use actix_web::ResponseError;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use onboarding_app::http::error::ApiError;
use onboarding_app::http::middleware::api::RequestHeaders;
use onboarding_app::http::routes::provision::parse_request;
use onboarding_app::redact::{MAX_LOGGED_BODY_BYTES, body_for_debug_log};
use onboarding_domain::model::{
    CorrelationId, OrgId, PlanCatalog, StripeCustomerId, StripeSubscriptionId, TenantId,
};

static CATALOG: LazyLock<PlanCatalog> = LazyLock::new(|| {
    onboarding_app::config::built_in_plan_catalog()
        .unwrap_or_else(|e| panic!("the shipped catalog: {e:#}"))
});

const KNOWN_FIELDS: [&str; 9] = [
    "x-request-id",
    "x-correlation-id",
    "x-tenant-id",
    "content-type",
    "body",
    "orgId",
    "stripeCustomerId",
    "stripeSubscriptionId",
    "planCode",
];

/// Splits an input into its header map and body.
fn request(data: &[u8]) -> (HeaderMap, &[u8]) {
    // The head ends at the first empty line, whichever line ending it uses.
    let crlf = find(data, b"\r\n\r\n").map(|i| (i, 4));
    let lf = find(data, b"\n\n").map(|i| (i, 2));
    let (head, body) = match crlf.into_iter().chain(lf).min() {
        Some((i, len)) => (&data[..i], &data[i + len..]),
        None => (data, &data[data.len()..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let value = trim_ows(&line[colon + 1..]);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    (headers, body)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

fuzz_target!(|data: &[u8]| {
    let (map, body) = request(data);
    let headers = RequestHeaders::read(&map);
    let ids = headers.ids();

    match parse_request(&headers, map.get("content-type"), body, &CATALOG) {
        Ok((request, context)) => {
            // Accepted: every value follows its rule (parsed again from scratch).
            assert!(OrgId::parse(request.org_id.as_str()).is_ok());
            assert!(StripeCustomerId::parse(request.stripe_customer_id.as_str()).is_ok());
            assert!(StripeSubscriptionId::parse(request.stripe_subscription_id.as_str()).is_ok());
            assert!(CATALOG.get(&request.plan.code).is_some());
            assert!(CorrelationId::parse(context.correlation_id.as_str()).is_ok());
            if let Some(tenant) = &context.tenant_id {
                assert!(TenantId::parse(tenant.as_str()).is_ok());
            }
            assert!(ids.request_id.is_some() && ids.correlation_id.is_some());
            assert!(headers.errors().is_empty());
        }
        Err(invalid) => {
            assert!(!invalid.details.is_empty(), "a refusal names what is wrong");
            for (i, detail) in invalid.details.iter().enumerate() {
                assert!(
                    KNOWN_FIELDS.contains(&detail.field.as_str()),
                    "unknown field {:?}",
                    detail.field
                );
                assert!(!detail.message.is_empty());
                assert!(
                    invalid.details[..i].iter().all(|d| d.field != detail.field),
                    "{:?} named twice",
                    detail.field
                );
            }
            // The 400 answer itself: built and serialized as the handler does.
            let answer = ApiError::invalid(invalid.message, invalid.details, &ids);
            assert_eq!(answer.error_response().status().as_u16(), 400);
        }
    }

    // The middleware keeps a copy of every body for the debug log.
    if let Some(logged) = body_for_debug_log(body) {
        assert!(logged.len() <= MAX_LOGGED_BODY_BYTES);
    }
});
