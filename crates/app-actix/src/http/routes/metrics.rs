//! `GET /metrics`: the instance's metrics in the Prometheus text format.

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use actix_web::web::Data;
use tracing::error;

use crate::metrics::{CONTENT_TYPE, Metrics};

/// The metrics of this instance, for a Prometheus scrape.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4.",
            body = String, content_type = "text/plain; version=0.0.4"),
    )
)]
pub async fn metrics(metrics: Data<Metrics>) -> HttpResponse {
    match metrics.render() {
        Ok(text) => HttpResponse::Ok()
            .insert_header((actix_web::http::header::CONTENT_TYPE, CONTENT_TYPE))
            .body(text),
        Err(e) => {
            error!(error = %e, "cannot encode the metrics");
            HttpResponse::InternalServerError()
                .content_type(ContentType::plaintext())
                .body("cannot encode the metrics")
        }
    }
}
