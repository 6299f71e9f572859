//! The HTTP routes and how they are mounted.

pub mod health;
pub mod metrics;
pub mod openapi;
pub mod provision;
pub mod stripe_webhooks;
pub mod sync_state;

use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::failure::ErrorCode;
use crate::http::error::{ApiError, TraceIds};
use crate::http::middleware::api::{
    MAX_WEBHOOK_BODY_BYTES, RequestHeaders, api_middleware, webhook_middleware,
};

/// Mounts every route. API routes sit under `/api`, behind the API middleware; the others
/// (health, metrics, this document) need no trace headers and write no debug-log row.
///
/// Another method on an existing route is 405 with `Allow`, not 404: the resource exists
/// (RFC 9110, section 15.5.6; Schemathesis' `unsupported_method` check holds us to it).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_only("/healthz").route(web::get().to(health::healthz)))
        .service(get_only("/readyz").route(web::get().to(health::readyz)))
        .service(get_only("/metrics").route(web::get().to(metrics::metrics)))
        .service(get_only("/openapi.json").route(web::get().to(openapi::openapi_json)))
        // Before `/api`: Stripe's deliveries pass a gate of their own (signature instead of
        // bearer, no trace headers required, a larger body).
        .service(
            web::scope(stripe_webhooks::WEBHOOK_PATH)
                .wrap(from_fn(webhook_middleware))
                .app_data(web::PayloadConfig::new(MAX_WEBHOOK_BODY_BYTES))
                .service(
                    web::resource("")
                        .route(web::post().to(stripe_webhooks::receive))
                        .default_service(web::to(|req| method_not_allowed(req, "POST"))),
                ),
        )
        .service(
            web::scope("/api")
                .wrap(from_fn(api_middleware))
                .service(
                    web::resource("/stigg/provision")
                        .route(web::post().to(provision::provision))
                        .default_service(web::to(|req| method_not_allowed(req, "POST"))),
                )
                .service(
                    web::resource("/stripe/events/{eventId}")
                        .route(web::get().to(sync_state::event))
                        .default_service(web::to(|req| method_not_allowed(req, "GET"))),
                )
                .service(
                    web::resource("/stigg/subscriptions/{stripeSubscriptionId}")
                        .route(web::get().to(sync_state::subscription))
                        .default_service(web::to(|req| method_not_allowed(req, "GET"))),
                )
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}

/// An operations route: GET only, 405 for anything else.
fn get_only(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|req| method_not_allowed(req, "GET")))
}

fn ids(req: &HttpRequest) -> TraceIds {
    RequestHeaders::of(req).ids()
}

/// Longest part of a path quoted back in a 404: a 64 KB path is not echoed.
const MAX_QUOTED_PATH_CHARS: usize = 128;

async fn not_found(req: HttpRequest) -> HttpResponse {
    let path = req.path();
    let quoted = onboarding_domain::text::truncate_chars(path, MAX_QUOTED_PATH_CHARS);
    let ellipsis = if quoted.len() < path.len() { "…" } else { "" };
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {quoted}{ellipsis}", req.method()),
        &ids(&req),
    )
    .error_response()
}

async fn method_not_allowed(req: HttpRequest, allowed: &'static str) -> HttpResponse {
    let mut response = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} is not allowed on {}; use {allowed}",
            req.method(),
            req.path()
        ),
        &ids(&req),
    )
    .error_response();
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static(allowed),
    );
    response
}

#[cfg(test)]
mod tests {
    use actix_web::http::{Method, header};
    use actix_web::{App, test};

    use super::*;

    #[actix_web::test]
    async fn other_methods_on_the_operations_routes_are_405_with_allow_get() {
        let app = test::init_service(App::new().configure(configure)).await;
        for (method, path) in [
            (Method::TRACE, "/healthz"),
            (Method::POST, "/readyz"),
            (Method::DELETE, "/metrics"),
            (Method::PUT, "/openapi.json"),
        ] {
            let request = test::TestRequest::default()
                .method(method.clone())
                .uri(path)
                .to_request();
            let response = test::call_service(&app, request).await;
            assert_eq!(response.status(), 405, "{method} {path}");
            assert_eq!(
                response.headers().get(header::ALLOW).map(|v| v.as_bytes()),
                Some(&b"GET"[..]),
                "{method} {path}"
            );
            let body: serde_json::Value = test::read_body_json(response).await;
            assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
            assert_eq!(
                body["message"],
                format!("{method} is not allowed on {path}; use GET")
            );
        }
        let request = test::TestRequest::get().uri("/nowhere").to_request();
        assert_eq!(test::call_service(&app, request).await.status(), 404);
    }
}
