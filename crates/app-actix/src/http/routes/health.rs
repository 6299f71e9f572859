//! Liveness and readiness, for load balancers and orchestrators.

use actix_web::HttpResponse;
use actix_web::web::Data;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::state::AppState;

/// The body of `/healthz` and `/readyz`.
#[derive(Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` (`/healthz`), `ready` or `unavailable` (`/readyz`).
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Why the service is not ready (503 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "database unreachable")]
    pub reason: Option<String>,
}

/// 200 while the process runs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process runs.", body = HealthStatus, content_type = "application/json"))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus {
        status: "ok",
        reason: None,
    })
}

/// 200 when the database answers and every migration is applied, else 503 with the reason.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers and every migration is applied.",
            body = HealthStatus, content_type = "application/json"),
        (status = 503, description = "Not ready; `reason` says why.",
            body = HealthStatus, content_type = "application/json"),
    )
)]
pub async fn readyz(state: Data<AppState>) -> HttpResponse {
    match state.readiness.check().await {
        Ok(()) => HttpResponse::Ok().json(HealthStatus {
            status: "ready",
            reason: None,
        }),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            HttpResponse::ServiceUnavailable().json(HealthStatus {
                status: "unavailable",
                reason: Some(reason),
            })
        }
    }
}
