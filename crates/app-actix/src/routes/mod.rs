//! The HTTP routes and how they are mounted.

pub mod health;
pub mod metrics;
pub mod openapi;
pub mod provision;

use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::error::{ApiError, ErrorCode};
use crate::middleware::api::{RequestHeaders, api_middleware};

/// Mounts every route. API routes sit under `/api`, behind the API middleware; the others
/// (health, metrics, this document) need no trace headers and write no debug-log row.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/openapi.json", web::get().to(openapi::openapi_json))
        .service(
            web::scope("/api")
                .wrap(from_fn(api_middleware))
                .service(
                    web::resource("/stigg/provision")
                        .route(web::post().to(provision::provision))
                        .default_service(web::to(method_not_allowed)),
                )
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}

fn ids(req: &HttpRequest) -> crate::error::TraceIds {
    RequestHeaders::read(req.headers()).ids()
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
        &ids(&req),
    )
    .error_response()
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut response = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} is not allowed on {}; use POST",
            req.method(),
            req.path()
        ),
        &ids(&req),
    )
    .error_response();
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static("POST"),
    );
    response
}
