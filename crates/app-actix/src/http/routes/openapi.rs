//! `GET /openapi.json`: the OpenAPI document, rendered once at start-up.

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use actix_web::web::Data;

use crate::http::openapi::OpenApiJson;

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of the service.",
            body = Object, content_type = "application/json"),
    )
)]
pub async fn openapi_json(document: Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(document.bytes())
}
