//! `POST /api/stigg/provision`: parse headers and body into the domain's request, run the
//! use case, answer.

use actix_web::http::header;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use onboarding_domain::use_cases::provision_subscription::{
    Field, FieldError, OperationContext, ProvisionRequest, RawProvisionRequest,
};
use serde::Serialize;
use serde_json::{Map, Value};
use tracing::{error, info};

use crate::error::{ApiError, ErrorCode, TraceIds};
use crate::middleware::api::RequestHeaders;
use crate::state::AppState;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProvisionResponse<'a> {
    provisioned: bool,
    stigg_customer_id: &'a str,
    stigg_subscription_id: &'a str,
    request_id: Option<&'a str>,
    correlation_id: Option<&'a str>,
}

pub async fn provision(
    req: HttpRequest,
    body: Bytes,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let headers = req
        .extensions()
        .get::<RequestHeaders>()
        .cloned()
        .unwrap_or_else(|| RequestHeaders::read(req.headers()));
    let ids = headers.ids();
    let (request, ctx) = parse(&req, &body, &headers, &state, &ids)?;

    match state.provision.execute(&request, &ctx).await {
        Ok(done) => {
            info!(
                stigg_customer_id = %done.stigg_customer_id,
                stigg_subscription_id = %done.stigg_subscription_id,
                already_provisioned = done.already_provisioned,
                "provisioned"
            );
            Ok(HttpResponse::Ok().json(ProvisionResponse {
                provisioned: true,
                stigg_customer_id: &done.stigg_customer_id,
                stigg_subscription_id: &done.stigg_subscription_id,
                request_id: ids.request_id.as_ref().map(|id| id.as_str()),
                correlation_id: ids.correlation_id.as_ref().map(|id| id.as_str()),
            }))
        }
        Err(failure) => {
            let answer = ApiError::from_provision(&failure, &ids);
            if answer.code == ErrorCode::Internal {
                // The full cause (driver or Stigg detail) goes to the log only.
                error!(error = ?failure, "provisioning failed");
            } else {
                info!(error = %failure, "provisioning refused");
            }
            Err(answer)
        }
    }
}

/// Headers and body to the domain's request, or a 400 naming every offending field.
fn parse(
    req: &HttpRequest,
    body: &[u8],
    headers: &RequestHeaders,
    state: &AppState,
    ids: &TraceIds,
) -> Result<(ProvisionRequest, OperationContext), ApiError> {
    let header_errors = headers.errors();
    let body_result = parse_body(req, body, state);
    let body_errors = body_result.as_ref().err().cloned().unwrap_or_default();
    let message = match (header_errors.is_empty(), body_errors.is_empty()) {
        (false, false) => "request headers and body are invalid",
        (false, true) => "request headers are invalid",
        _ => "request body is invalid",
    };
    match (&headers.correlation_id, &headers.tenant_id, body_result) {
        (Ok(correlation_id), Ok(tenant_id), Ok(request)) if header_errors.is_empty() => Ok((
            request,
            OperationContext {
                correlation_id: correlation_id.clone(),
                tenant_id: tenant_id.clone(),
            },
        )),
        _ => Err(ApiError::invalid(
            message,
            header_errors.into_iter().chain(body_errors).collect(),
            ids,
        )),
    }
}

fn parse_body(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<ProvisionRequest, Vec<FieldError>> {
    let declared_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default());
    if let Some(content_type) = declared_type
        && !is_json(content_type)
    {
        return Err(vec![FieldError::new(
            "content-type",
            "must be application/json",
        )]);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(vec![FieldError::new("body", "is required: a JSON object")]);
    }
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err(vec![FieldError::new("body", "must be a JSON object")]),
        Err(e) => {
            return Err(vec![FieldError::new(
                "body",
                format!("is not valid JSON ({e})"),
            )]);
        }
    };
    let raw = RawProvisionRequest {
        org_id: field(&object, "orgId"),
        stripe_customer_id: field(&object, "stripeCustomerId"),
        stripe_subscription_id: field(&object, "stripeSubscriptionId"),
        plan_code: field(&object, "planCode"),
    };
    ProvisionRequest::parse(&raw, &state.catalog)
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Field<'a> {
    match object.get(name) {
        None | Some(Value::Null) => Field::Missing,
        Some(Value::String(text)) => Field::Value(text),
        Some(other) => Field::Invalid(format!("must be a string, not {}", json_type(other))),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
