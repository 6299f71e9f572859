//! `POST /api/stripe/webhooks`: check Stripe's signature over the raw body, store the event
//! once, answer at once. The sync's work happens in the background worker.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use onboarding_adapters_stripe::{WebhookSecrets, verify};
use onboarding_domain::input::FieldError;
use onboarding_domain::model::{CorrelationId, ReceivedEvent, StripeEventId};
use onboarding_domain::ports::StripeInbox;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;
use tracing::{error, info};
use utoipa::ToSchema;

use crate::failure::{ErrorBody, ErrorCode};
use crate::http::error::{ApiError, TraceIds};
use crate::http::middleware::api::{CorrelatedBy, RequestHeaders};
use crate::metrics::Metrics;

/// Where Stripe (and the bundled emulator) delivers events.
pub const WEBHOOK_PATH: &str = "/api/stripe/webhooks";

/// The header Stripe signs deliveries with.
pub const STRIPE_SIGNATURE: &str = "stripe-signature";

/// What the webhook route needs; absent when the sync is not configured (404).
pub struct WebhookIntake {
    pub secrets: WebhookSecrets,
    pub tolerance: Duration,
    pub inbox: Arc<dyn StripeInbox>,
    /// Wakes the worker as soon as an event is stored.
    pub wakeup: Arc<Notify>,
}

/// The 200 answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookReceipt)]
pub struct WebhookReceipt {
    /// Always `true`: the event is stored.
    received: bool,
    #[schema(example = "evt_1Q2w3E")]
    event_id: String,
    /// `true` when this event id was stored before; nothing else happened.
    duplicate: bool,
}

/// Receive a Stripe webhook event
///
/// Authenticated by the `Stripe-Signature` header (HMAC-SHA256 over the raw body with any
/// configured `STRIPE_WEBHOOK_SECRET`, within `STRIPE_WEBHOOK_TOLERANCE_SECS`), not by the
/// bearer token; no trace headers are required. The event is stored before the answer and
/// handled in the background: the subscription (or customer) is read again from Stripe and
/// Stigg is moved to match.
#[utoipa::path(
    post,
    path = "/api/stripe/webhooks",
    tag = "stripe",
    operation_id = "receiveStripeWebhook",
    request_body(content = Object, content_type = "application/json",
        description = "A Stripe event: a JSON object with a string `id`, a string `type` and `data.object`."),
    params(
        ("stripe-signature" = String, Header, description = "`t=<unix seconds>,v1=<hex>[,v1=…]`, as Stripe sends it."),
    ),
    responses(
        (status = 200, description = "Stored (or stored before: `duplicate: true`).",
            body = WebhookReceipt, content_type = "application/json"),
        (status = 400, description = "`INVALID_SIGNATURE`: the signature header is missing or malformed, matches no secret, or is outside the tolerance. `BAD_REQUEST`: signed, but not an event (a JSON object with a string `id`, a string `type` and `data.object`).",
            body = ErrorBody, content_type = "application/json"),
        (status = 404, description = "Stripe webhooks are not configured.",
            body = ErrorBody, content_type = "application/json"),
        (status = 405, description = "Any method but POST.",
            body = ErrorBody, content_type = "application/json",
            headers(("allow" = String, description = "`POST`"))),
        (status = 408, description = "The body did not arrive within 10 s of the headers.",
            body = ErrorBody, content_type = "application/json"),
        (status = 413, description = "The body is larger than 512 KiB; refused before it is read whole.",
            body = ErrorBody, content_type = "application/json"),
        (status = 500, description = "The event could not be stored; Stripe delivers it again.",
            body = ErrorBody, content_type = "application/json"),
    )
)]
pub async fn receive(
    req: HttpRequest,
    body: Bytes,
    intake: Option<Data<WebhookIntake>>,
    metrics: Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let ids = RequestHeaders::of(&req).ids();
    let Some(intake) = intake else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)",
            &ids,
        ));
    };
    let header = req
        .headers()
        .get(STRIPE_SIGNATURE)
        .and_then(|value| value.to_str().ok());
    let now = Utc::now();
    if let Err(refused) = verify(
        header,
        &body,
        &intake.secrets,
        now.timestamp(),
        intake.tolerance,
    ) {
        info!(reason = %refused, "webhook signature refused");
        metrics.stripe_event(None, "invalid_signature");
        return Err(ApiError::new(
            ErrorCode::InvalidSignature,
            format!("invalid Stripe signature: {refused}"),
            &ids,
        ));
    }
    let event = parse_event(&body, now).map_err(|details| {
        metrics.stripe_event(None, "bad_request");
        ApiError::invalid("the body is not a Stripe event", details, &ids)
    })?;
    let correlation = CorrelationId::parse(event.id.as_str()).ok();
    let ids = TraceIds {
        correlation_id: correlation.clone().or(ids.correlation_id),
        ..ids
    };
    let stored = intake.inbox.receive(&event).await.map_err(|failure| {
        error!(event_id = %event.id, error = %failure, "cannot store the Stripe event");
        ApiError::new(
            ErrorCode::Internal,
            "the event could not be stored; deliver it again",
            &ids,
        )
    })?;
    if stored {
        intake.wakeup.notify_one();
    }
    let outcome = match (stored, event.status.as_str()) {
        (false, _) => "duplicate",
        (true, status) => status,
    };
    metrics.stripe_event(Some(&event.event_type), outcome);
    info!(event_id = %event.id, event_type = %event.event_type, object_id = %event.object_id, duplicate = !stored, "Stripe event received");
    let mut response = HttpResponse::Ok().json(WebhookReceipt {
        received: true,
        event_id: event.id.to_string(),
        duplicate: !stored,
    });
    if let Some(id) = correlation {
        response.extensions_mut().insert(CorrelatedBy(id));
    }
    Ok(response)
}

/// The event's fields the inbox keeps, or every field that is missing or of the wrong type.
fn parse_event(body: &[u8], now: DateTime<Utc>) -> Result<ReceivedEvent, Vec<FieldError>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| vec![FieldError::new("body", format!("is not valid JSON: {e}"))])?;
    let Value::Object(event) = &value else {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let id = match event.get("id").and_then(Value::as_str) {
        Some(raw) => StripeEventId::parse(raw)
            .map_err(|e| errors.push(FieldError::new("id", e.to_string())))
            .ok(),
        None => {
            errors.push(FieldError::new("id", "must be a string"));
            None
        }
    };
    let event_type = event.get("type").and_then(Value::as_str);
    if event_type.is_none() {
        errors.push(FieldError::new("type", "must be a string"));
    }
    let object = event.get("data").and_then(|data| data.get("object"));
    if !object.is_some_and(Value::is_object) {
        errors.push(FieldError::new("data.object", "must be a JSON object"));
    }
    let (Some(id), Some(event_type), Some(object)) = (id, event_type, object) else {
        return Err(errors);
    };
    let object_id = object.get("id").and_then(Value::as_str).unwrap_or_default();
    let (status, error) = ReceivedEvent::initial_status(event_type, object_id);
    Ok(ReceivedEvent {
        id,
        event_type: event_type.to_owned(),
        object_id: object_id.to_owned(),
        created: event
            .get("created")
            .and_then(Value::as_i64)
            .and_then(|secs| DateTime::from_timestamp(secs, 0)),
        livemode: event
            .get("livemode")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        // Valid JSON is valid UTF-8.
        payload: String::from_utf8_lossy(body).into_owned(),
        status,
        error,
        received_at: now,
    })
}

#[cfg(test)]
mod tests {
    use actix_web::test as actix_test;
    use actix_web::{App, web};
    use onboarding_domain::model::EventStatus;

    use super::*;

    /// Without the sync's settings (production without STRIPE_WEBHOOK_SECRET) nothing is
    /// stored and the route says why, whatever the body.
    #[actix_web::test]
    async fn without_the_sync_configured_the_route_answers_404() {
        let metrics = Data::new(Metrics::new().expect("the metrics register"));
        let app = actix_test::init_service(
            App::new()
                .app_data(metrics)
                .route("/webhooks", web::post().to(receive)),
        )
        .await;
        let request = actix_test::TestRequest::post()
            .uri("/webhooks")
            .insert_header(("x-request-id", "req-404"))
            .set_payload(r#"{"id": "evt_1"}"#)
            .to_request();

        let response = actix_test::call_service(&app, request).await;

        assert_eq!(response.status(), 404);
        let body: Value = actix_test::read_body_json(response).await;
        assert_eq!(body["code"], "NOT_FOUND");
        assert_eq!(
            body["message"],
            "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)"
        );
        assert_eq!(body["requestId"], "req-404");
    }

    #[test]
    fn an_event_needs_an_id_a_type_and_a_data_object_and_every_missing_one_is_named() {
        let now = Utc::now();
        let fields = |body: &str| -> Vec<String> {
            parse_event(body.as_bytes(), now)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(fields("[]"), ["body"]);
        assert_eq!(fields("{"), ["body"]);
        assert_eq!(fields("{}"), ["id", "type", "data.object"]);
        assert_eq!(
            fields(r#"{"id": 1, "type": "x", "data": {"object": 2}}"#),
            ["id", "data.object"]
        );

        let handled = parse_event(
            br#"{"id": "evt_1", "type": "customer.subscription.updated", "created": 1700000000,
                 "livemode": true, "data": {"object": {"id": "sub_1"}}}"#,
            now,
        )
        .unwrap();
        assert_eq!(
            (handled.object_id.as_str(), handled.status, handled.livemode),
            ("sub_1", EventStatus::Pending, true)
        );
        assert_eq!(handled.created.map(|c| c.timestamp()), Some(1_700_000_000));
        let other = parse_event(
            br#"{"id": "evt_2", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}"#,
            now,
        )
        .unwrap();
        assert_eq!(other.status, EventStatus::Ignored);
        let wrong_object = parse_event(
            br#"{"id": "evt_3", "type": "customer.subscription.updated", "data": {"object": {"id": "cus_1"}}}"#,
            now,
        )
        .unwrap();
        assert_eq!(wrong_object.status, EventStatus::Failed);
        assert!(wrong_object.error.is_some());
    }
}
