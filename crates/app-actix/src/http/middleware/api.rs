//! What every API request goes through, whatever its outcome: trace ids read once, the
//! optional bearer check, the body size cap, the ids echoed on the answer, one request span
//! and exactly one `debug_logs` row.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpMessage, HttpRequest, ResponseError};
use futures::StreamExt;
use onboarding_domain::input::FieldError;
use onboarding_domain::model::{CorrelationId, RequestId, TenantId};
use onboarding_domain::ports::DebugLogEntry;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tracing::{Instrument, info, info_span};

use crate::failure::ErrorCode;
use crate::http::debug_log::{DebugLogWriter, OpenRow};
use crate::http::error::{ApiError, TraceIds};
use crate::redact::body_for_debug_log;

/// Bodies above this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Stripe's events can be large (a subscription with many items, metadata): Stripe's own
/// bound for webhook payloads.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 512 * 1024;

/// What the gate checks for one scope of routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateRules {
    /// `API_TOKEN`, when configured, is required.
    pub bearer: bool,
    pub max_body_bytes: usize,
    /// A request id is generated when the caller sent none (Stripe sends none).
    pub generate_request_id: bool,
}

/// The API routes called by the operators' systems.
pub const API_RULES: GateRules = GateRules {
    bearer: true,
    max_body_bytes: MAX_BODY_BYTES,
    generate_request_id: false,
};

/// Stripe's webhook deliveries: authenticated by their signature, not by the bearer.
pub const WEBHOOK_RULES: GateRules = GateRules {
    bearer: false,
    max_body_bytes: MAX_WEBHOOK_BODY_BYTES,
    generate_request_id: true,
};

/// Set by a handler on its answer when the request names its own correlation id (a Stripe
/// event's id): the debug-log row and the echoed header carry it.
#[derive(Debug, Clone)]
pub struct CorrelatedBy(pub CorrelationId);

/// The whole body must arrive within this (16 KiB take milliseconds on any real link).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest path kept in a debug-log row (and quoted in an answer).
pub(crate) const MAX_PATH_BYTES: usize = 1024;

pub const REQUEST_ID: &str = "x-request-id";
pub const CORRELATION_ID: &str = "x-correlation-id";
pub const TENANT_ID: &str = "x-tenant-id";

/// What the API middleware needs, shared by all workers.
pub struct ApiGuard {
    pub api_token: Option<SecretString>,
    pub debug_log: Arc<DebugLogWriter>,
}

/// The trace headers as received: parsed when valid, with what is wrong otherwise.
#[derive(Debug, Clone)]
pub struct RequestHeaders {
    pub request_id: Result<RequestId, FieldError>,
    pub correlation_id: Result<CorrelationId, FieldError>,
    /// `Ok(None)` when absent (it is optional).
    pub tenant_id: Result<Option<TenantId>, FieldError>,
}

impl RequestHeaders {
    pub fn read(headers: &HeaderMap) -> Self {
        Self {
            request_id: required(headers, REQUEST_ID, RequestId::parse),
            correlation_id: required(headers, CORRELATION_ID, CorrelationId::parse),
            tenant_id: match headers.get(TENANT_ID) {
                None => Ok(None),
                Some(_) => required(headers, TENANT_ID, TenantId::parse).map(Some),
            },
        }
    }

    /// The headers the API middleware read for `req`, read again when it did not run.
    pub fn of(req: &HttpRequest) -> Self {
        req.extensions()
            .get::<Self>()
            .cloned()
            .unwrap_or_else(|| Self::read(req.headers()))
    }

    pub fn ids(&self) -> TraceIds {
        TraceIds {
            request_id: self.request_id.as_ref().ok().cloned(),
            correlation_id: self.correlation_id.as_ref().ok().cloned(),
        }
    }

    /// Every header that breaks its rule.
    pub fn errors(&self) -> Vec<FieldError> {
        [
            self.request_id.as_ref().err(),
            self.correlation_id.as_ref().err(),
            self.tenant_id.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }
}

fn required<T, E: ToString>(
    headers: &HeaderMap,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, FieldError> {
    let mut values = headers.get_all(name);
    let (Some(value), None) = (values.next(), values.next()) else {
        let problem = if headers.contains_key(name) {
            "must be given once"
        } else {
            "is required"
        };
        return Err(FieldError::new(name, problem));
    };
    let text = value.to_str().map_err(|_| {
        FieldError::new(
            name,
            "must contain only visible ASCII characters (no spaces or control characters)",
        )
    })?;
    parse(text).map_err(|e| FieldError::new(name, e.to_string()))
}

/// The middleware function of `/api` (see [`actix_web::middleware::from_fn`]).
pub async fn api_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    gate(req, next, API_RULES).await
}

/// The middleware function of Stripe's webhook route.
pub async fn webhook_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    gate(req, next, WEBHOOK_RULES).await
}

async fn gate(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    rules: GateRules,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let guard = req
        .app_data::<actix_web::web::Data<ApiGuard>>()
        .cloned()
        .ok_or_else(|| actix_web::error::ErrorInternalServerError("API guard not configured"))?;
    let mut headers = RequestHeaders::read(req.headers());
    if rules.generate_request_id
        && headers.request_id.is_err()
        && let Ok(generated) = RequestId::parse(&uuid::Uuid::now_v7().to_string())
    {
        // The handler answers with it too, not only the echoed header and the row.
        headers.request_id = Ok(generated);
    }
    let mut ids = headers.ids();
    let tenant = headers.tenant_id.clone().ok().flatten();
    let span = info_span!(
        "request",
        method = %req.method(),
        path = %req.path(),
        request_id = ids.request_id.as_ref().map(RequestId::as_str),
        correlation_id = ids.correlation_id.as_ref().map(CorrelationId::as_str),
        tenant_id = tenant.as_ref().map(TenantId::as_str),
    );
    req.extensions_mut().insert(headers);

    async move {
        // The row exists from the start: a request cut off before its answer still has one.
        let mut row = PendingRow {
            _open: guard.debug_log.open_row(),
            writer: guard.debug_log.clone(),
            started,
            entry: Some(DebugLogEntry {
                key: crate::http::debug_log::new_row_key(),
                request_id: ids.request_id.as_ref().map(|id| id.as_str().to_owned()),
                correlation_id: ids.correlation_id.as_ref().map(|id| id.as_str().to_owned()),
                tenant_id: tenant.as_ref().map(|id| id.as_str().to_owned()),
                method: req.method().to_string(),
                path: onboarding_domain::text::truncate_chars(req.path(), MAX_PATH_BYTES)
                    .to_owned(),
                request_body: None,
                status: CUT_OFF_STATUS,
                error_code: Some(CUT_OFF_CODE.to_owned()),
                duration_ms: 0,
                created_at: chrono::Utc::now(),
            }),
        };
        let response = match refuse_early(&guard, &mut req, &ids, rules).await {
            Err(refusal) => req.into_response(refusal.error_response()),
            Ok(bytes) => {
                row.set_body(body_for_debug_log(&bytes));
                req.set_payload(bytes.into());
                next.call(req).await?.map_into_boxed_body()
            }
        };
        let mut response = response;
        if let Some(CorrelatedBy(id)) = response.response().extensions().get::<CorrelatedBy>() {
            if let Some(entry) = &mut row.entry {
                entry.correlation_id = Some(id.as_str().to_owned());
            }
            ids.correlation_id = Some(id.clone());
        }
        echo_ids(response.headers_mut(), &ids);

        let status = response.status().as_u16();
        let error_code = response.response().extensions().get::<ErrorCode>().copied();
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        info!(
            status,
            error_code = error_code.map(ErrorCode::as_str),
            duration_ms,
            "request finished"
        );
        // Written off the request path by group commit (ADR 0005). A failure to write it never
        // changes the answer: the writer keeps it.
        if let Some(mut entry) = row.entry.take() {
            entry.status = status;
            entry.error_code = error_code.map(|c| c.as_str().to_owned());
            entry.duration_ms = duration_ms;
            guard.debug_log.record(entry).await;
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// The status and code of a row whose request was cut off before its answer: the server
/// stopped waiting for it (the end of the drain, or a second stop signal) or the client went
/// away. 499 as proxies write it: the caller got no answer from us.
pub(crate) const CUT_OFF_STATUS: u16 = 499;
pub(crate) const CUT_OFF_CODE: &str = "CUT_OFF";

/// The row of a request being served. Finished, the middleware takes its entry and records
/// it with the answer's status. Dropped with its entry still in it (the request's future was
/// dropped before the answer), it records the entry as cut off.
struct PendingRow {
    /// Fields drop after `Drop::drop` has run: the promise ends once the row is handed over.
    _open: OpenRow,
    writer: Arc<DebugLogWriter>,
    started: Instant,
    entry: Option<DebugLogEntry>,
}

impl PendingRow {
    fn set_body(&mut self, body: Option<String>) {
        if let Some(entry) = &mut self.entry {
            entry.request_body = body;
        }
    }
}

impl Drop for PendingRow {
    fn drop(&mut self) {
        if let Some(mut entry) = self.entry.take() {
            entry.duration_ms =
                i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
            tracing::warn!(
                request_id = entry.request_id.as_deref(),
                duration_ms = entry.duration_ms,
                "request cut off before its answer"
            );
            self.writer.record_now(entry);
        }
    }
}

/// The checks that answer before the handler runs: bearer token, then body size. On success
/// the whole body, read.
async fn refuse_early(
    guard: &ApiGuard,
    req: &mut ServiceRequest,
    ids: &TraceIds,
    rules: GateRules,
) -> Result<Bytes, ApiError> {
    let max_body = rules.max_body_bytes;
    // Two credentials are one too many, whichever would be checked (as for trace headers).
    if req
        .headers()
        .get_all(header::AUTHORIZATION)
        .nth(1)
        .is_some()
    {
        return Err(ApiError::invalid(
            "request headers are invalid",
            vec![FieldError::new("authorization", "must be given once")],
            ids,
        ));
    }
    if let Some(expected) = guard.api_token.as_ref().filter(|_| rules.bearer)
        && !bearer_matches(req.headers(), expected)
    {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "missing or invalid bearer token",
            ids,
        ));
    }
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than {max_body} bytes"),
            ids,
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body as u64) {
        return Err(too_large());
    }
    let (_, payload) = req.parts_mut();
    let mut payload = std::mem::replace(payload, actix_web::dev::Payload::None);
    let read = async {
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            // The decoder's own words (e.g. a chunk size it could not parse) stay in the log.
            let chunk = chunk.map_err(|e| {
                tracing::info!(error = %e, "request body could not be read");
                ApiError::new(ErrorCode::BadRequest, "request body could not be read", ids)
            })?;
            if body.len() + chunk.len() > max_body {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    // Headers are cut off by actix after 5 s; a body trickling in a byte at a time would
    // otherwise hold its connection (and a file descriptor) for ever.
    tokio::time::timeout(BODY_READ_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "request body not received within {} s",
                    BODY_READ_TIMEOUT.as_secs()
                ),
                ids,
            ))
        })
}

fn bearer_matches(headers: &HeaderMap, expected: &SecretString) -> bool {
    // The scheme name is case-insensitive (RFC 9110): `bearer` and `BEARER` count too.
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim_start_matches(' '))
    else {
        return false;
    };
    // Constant time, so the comparison does not tell an attacker how much of a guess was right.
    given
        .as_bytes()
        .ct_eq(expected.expose_secret().as_bytes())
        .into()
}

fn echo_ids(headers: &mut HeaderMap, ids: &TraceIds) {
    let pairs = [
        (REQUEST_ID, ids.request_id.as_ref().map(RequestId::as_str)),
        (
            CORRELATION_ID,
            ids.correlation_id.as_ref().map(CorrelationId::as_str),
        ),
    ];
    for (name, value) in pairs {
        // Valid ids are visible ASCII, so they are always valid header values.
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(header::HeaderName::from_static(name), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn reads_valid_and_names_invalid_headers() {
        let req = TestRequest::default()
            .insert_header((REQUEST_ID, "req-1"))
            .insert_header((CORRELATION_ID, "has space"))
            .to_http_request();
        let headers = RequestHeaders::read(req.headers());
        assert_eq!(
            headers.ids().request_id.map(|i| i.as_str().to_owned()),
            Some("req-1".into())
        );
        assert_eq!(headers.ids().correlation_id, None);
        assert!(matches!(headers.tenant_id, Ok(None)));
        let fields: Vec<_> = headers.errors().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, [CORRELATION_ID]);
    }

    #[test]
    fn missing_and_repeated_headers_are_errors() {
        let req = TestRequest::default()
            .append_header((REQUEST_ID, "a"))
            .append_header((REQUEST_ID, "b"))
            .insert_header((TENANT_ID, ""))
            .to_http_request();
        let errors = RequestHeaders::read(req.headers()).errors();
        let messages: Vec<_> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            [
                (REQUEST_ID, "must be given once"),
                (CORRELATION_ID, "is required"),
                (TENANT_ID, "must not be empty"),
            ]
        );
    }

    #[test]
    fn bearer_token_must_match_exactly() {
        let expected = SecretString::from("s3cret".to_owned());
        let with = |value: &str| {
            let req = TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request();
            bearer_matches(req.headers(), &expected)
        };
        assert!(with("Bearer s3cret"));
        assert!(!with("Bearer s3cre"));
        assert!(!with("Bearer s3cret2"));
        assert!(!with("Basic s3cret"));
        assert!(!bearer_matches(
            TestRequest::default().to_http_request().headers(),
            &expected
        ));
    }
}
