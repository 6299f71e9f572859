//! Liveness and readiness, for load balancers and orchestrators.

use actix_web::HttpResponse;
use actix_web::web::Data;
use serde_json::json;

use crate::state::AppState;

/// 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 when the database answers and every migration is applied, else 503 with the reason.
pub async fn readyz(state: Data<AppState>) -> HttpResponse {
    match state.readiness.check().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "reason": reason }))
        }
    }
}
