//! The sync's state, read: one stored Stripe event, and what was last applied in Stigg for
//! one Stripe subscription.

use std::sync::Arc;

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use onboarding_domain::input::FieldError;
use onboarding_domain::model::{
    EventSubject, IdError, StripeEventId, StripeSubscriptionId, TenantId,
};
use onboarding_domain::ports::{RepoError, StripeInbox, SyncStateStore};
use serde::Serialize;
use tracing::error;
use utoipa::ToSchema;

use crate::failure::{ErrorBody, ErrorCode};
use crate::http::error::{ApiError, TraceIds};
use crate::http::middleware::api::RequestHeaders;

/// What the read routes read.
pub struct SyncReads {
    pub inbox: Arc<dyn StripeInbox>,
    pub states: Arc<dyn SyncStateStore>,
}

/// One Stigg call an event's handling made.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoveBody {
    /// `provision`, `create_subscription`, `patch_subscription`, `cancel_subscription` or
    /// `archive_customer`.
    call: String,
    /// The Stigg subscription or customer it acted on.
    stigg_id: String,
    at: String,
}

/// A stored Stripe event.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StripeEvent)]
pub struct EventBody {
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    /// The Stripe object it is about (`sub_…`, `cus_…`).
    object_id: String,
    /// `pending`, `applied`, `ignored` or `failed`.
    #[schema(example = "applied")]
    status: String,
    attempts: u32,
    received_at: String,
    processed_at: Option<String>,
    error: Option<String>,
    moves: Vec<MoveBody>,
}

/// What was last applied in Stigg for a Stripe subscription.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StiggSubscriptionState)]
pub struct SubscriptionStateBody {
    stripe_subscription_id: String,
    org_id: String,
    stigg_customer_id: Option<String>,
    stigg_subscription_id: Option<String>,
    plan_code: Option<String>,
    /// `active` or `canceled`.
    status: Option<String>,
    trial_ends_at: Option<String>,
    cancellation_date: Option<String>,
    provisioned_at: Option<String>,
    last_synced_at: Option<String>,
    last_event_id: Option<String>,
    last_error: Option<String>,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Whether a record of an organization in tenant `of` may be shown to a caller who named
/// `tenant` (anyone, when none was named).
fn in_tenant(tenant: Option<&TenantId>, of: Option<&str>) -> bool {
    tenant.is_none_or(|tenant| of == Some(tenant.as_str()))
}

/// The path's id, parsed, and the optional tenant; every one that breaks its rule otherwise.
fn read_request<T>(
    req: &HttpRequest,
    raw: &str,
    field: &str,
    parse: impl FnOnce(&str) -> Result<T, IdError>,
) -> Result<(T, Option<TenantId>, TraceIds), ApiError> {
    let headers = RequestHeaders::of(req);
    let ids = headers.ids();
    let mut errors = Vec::new();
    let id = parse(raw)
        .map_err(|e| errors.push(FieldError::new(field, e.to_string())))
        .ok();
    let tenant = headers.tenant_id.map_err(|e| errors.push(e)).ok().flatten();
    match id {
        Some(id) if errors.is_empty() => Ok((id, tenant, ids)),
        _ => Err(ApiError::invalid("the request is invalid", errors, &ids)),
    }
}

/// Read a stored Stripe event
///
/// Where the event stands (`pending` until handled, then `applied`, `ignored` or `failed`),
/// its attempts, its last error and the Stigg calls its handling made.
#[utoipa::path(
    get,
    path = "/api/stripe/events/{eventId}",
    tag = "stripe",
    operation_id = "getStripeEvent",
    params(
        ("eventId" = String, Path, pattern = r"^[\x21-\x7E]{1,255}$", min_length = 1, max_length = 255,
            description = "The Stripe event id (`evt_…`): 1 to 255 visible ASCII characters."),
        ("x-tenant-id" = Option<String>, Header, nullable = false, pattern = r"^[\x21-\x7E]{1,128}$", min_length = 1, max_length = 128,
            description = "When given, the event must be about a subscription of this tenant (else 404)."),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The event.", body = EventBody, content_type = "application/json"),
        (status = 400, description = "The event id is not 1 to 255 visible ASCII characters, or `x-tenant-id` breaks its rule.",
            body = ErrorBody, content_type = "application/json"),
        (status = 401, description = "`API_TOKEN` is configured and the bearer token is missing or wrong.",
            body = ErrorBody, content_type = "application/json"),
        (status = 404, description = "No such event was received (or, with `x-tenant-id`, it is not about a subscription of that tenant).", body = ErrorBody, content_type = "application/json"),
        (status = 500, description = "The database failed.", body = ErrorBody, content_type = "application/json"),
    )
)]
pub async fn event(
    req: HttpRequest,
    id: Path<String>,
    reads: Data<SyncReads>,
) -> Result<HttpResponse, ApiError> {
    let (id, tenant, ids) = read_request(&req, &id, "eventId", StripeEventId::parse)?;
    let database_failed = |e: RepoError| {
        error!(error = %e, "cannot read the sync's state");
        ApiError::new(ErrorCode::Internal, "the database failed", &ids)
    };
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("event '{id}' not found"), &ids);
    let record = reads
        .inbox
        .find(&id)
        .await
        .map_err(database_failed)?
        .ok_or_else(not_found)?;
    // Within a tenant, an event is seen only when it is about a subscription of that tenant.
    if let Some(tenant) = &tenant {
        let view = match EventSubject::from_object_id(&record.object_id) {
            Some(EventSubject::Subscription(subscription)) => reads
                .states
                .view(&subscription)
                .await
                .map_err(database_failed)?,
            _ => None,
        };
        if !in_tenant(Some(tenant), view.and_then(|v| v.tenant_id).as_deref()) {
            return Err(not_found());
        }
    }
    Ok(HttpResponse::Ok().json(EventBody {
        event_id: record.id.to_string(),
        event_type: record.event_type,
        object_id: record.object_id,
        status: record.status.as_str().to_owned(),
        attempts: record.attempts,
        received_at: time(record.received_at),
        processed_at: record.processed_at.map(time),
        error: record.error,
        moves: record
            .moves
            .into_iter()
            .map(|m| MoveBody {
                call: m.call,
                stigg_id: m.stigg_id,
                at: time(m.at),
            })
            .collect(),
    }))
}

/// Read a subscription's Stigg state
///
/// What the service last applied in Stigg for this Stripe subscription (provisioning or the
/// lifecycle sync), when and after which event, and the last error.
#[utoipa::path(
    get,
    path = "/api/stigg/subscriptions/{stripeSubscriptionId}",
    tag = "stripe",
    operation_id = "getStiggSubscriptionState",
    params(
        ("stripeSubscriptionId" = String, Path, pattern = r"^sub_[A-Za-z0-9]{1,250}$", description = "The Stripe subscription id."),
        ("x-tenant-id" = Option<String>, Header, nullable = false, pattern = r"^[\x21-\x7E]{1,128}$", min_length = 1, max_length = 128,
            description = "When given, the subscription's organization must belong to this tenant (else 404)."),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The state.", body = SubscriptionStateBody, content_type = "application/json"),
        (status = 400, description = "The subscription id or a header breaks its rule.",
            body = ErrorBody, content_type = "application/json"),
        (status = 401, description = "`API_TOKEN` is configured and the bearer token is missing or wrong.",
            body = ErrorBody, content_type = "application/json"),
        (status = 404, description = "Never provisioned nor synced (or not in the tenant).",
            body = ErrorBody, content_type = "application/json"),
        (status = 500, description = "The database failed.", body = ErrorBody, content_type = "application/json"),
    )
)]
pub async fn subscription(
    req: HttpRequest,
    id: Path<String>,
    reads: Data<SyncReads>,
) -> Result<HttpResponse, ApiError> {
    let (id, tenant, ids) = read_request(
        &req,
        &id,
        "stripeSubscriptionId",
        StripeSubscriptionId::parse,
    )?;
    let view = reads.states.view(&id).await.map_err(|e| {
        error!(error = %e, "cannot read the subscription's sync state");
        ApiError::new(ErrorCode::Internal, "the database failed", &ids)
    })?;
    let view = view
        .filter(|v| in_tenant(tenant.as_ref(), v.tenant_id.as_deref()))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("subscription '{id}' was never provisioned nor synced"),
                &ids,
            )
        })?;
    Ok(HttpResponse::Ok().json(SubscriptionStateBody {
        stripe_subscription_id: view.stripe_subscription_id.to_string(),
        org_id: view.org_id,
        stigg_customer_id: view.stigg_customer_id,
        stigg_subscription_id: view.stigg_subscription_id,
        plan_code: view.plan_code,
        status: view.status,
        trial_ends_at: view.trial_ends_at.map(time),
        cancellation_date: view.cancellation_date.map(time),
        provisioned_at: view.provisioned_at.map(time),
        last_synced_at: view.last_synced_at.map(time),
        last_event_id: view.last_event_id,
        last_error: view.last_error,
    }))
}
