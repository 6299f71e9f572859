//! `POST /api/stigg/provision`: parse headers and body into the domain's request, run the
//! use case, answer.

use std::collections::BTreeMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use onboarding_domain::input::FieldError;
use onboarding_domain::model::PlanCatalog;
use onboarding_domain::use_cases::OperationContext;
use onboarding_domain::use_cases::provision_subscription::{ProvisionRequest, RawProvisionRequest};
use serde::Serialize;
use serde_json::Value;
use tracing::{error, info};
use utoipa::ToSchema;

use crate::failure::{ErrorBody, ErrorCode, Failure};
use crate::http::error::ApiError;
use crate::http::middleware::api::RequestHeaders;
use crate::http::request::{self, InvalidRequest, JsonObject};
use crate::http::state::AppState;
use crate::metrics::{ALREADY_PROVISIONED, Metrics, PROVISIONED};

// For the OpenAPI document only: the handler reads the raw JSON so that it can name every
// offending field, and the domain parses the values.
/// The request body. Every field is required, and given once; unknown fields are ignored.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ProvisionRequest)]
pub struct ProvisionRequestBody {
    /// The organization; it becomes the Stigg customer id.
    #[schema(
        pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
        min_length = 1,
        max_length = 128,
        example = "org_8Yp2"
    )]
    pub org_id: String,
    /// The organization's Stripe customer.
    #[schema(
        pattern = r"^cus_[A-Za-z0-9]{1,250}$",
        min_length = 5,
        max_length = 254,
        example = "cus_Q1w2E3"
    )]
    pub stripe_customer_id: String,
    /// The Stripe subscription; it becomes the Stigg subscription id.
    #[schema(
        pattern = r"^sub_[A-Za-z0-9]{1,250}$",
        min_length = 5,
        max_length = 254,
        example = "sub_9Zx8Y7"
    )]
    pub stripe_subscription_id: String,
    /// A plan code of the catalog, and the subscription's plan.
    #[schema(
        pattern = r"^[a-z0-9_]{1,64}$",
        min_length = 1,
        max_length = 64,
        example = "plan_starter_m"
    )]
    pub plan_code: String,
    /// Unknown fields are allowed and ignored.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The 200 answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ProvisionResponse)]
pub struct ProvisionResponse<'a> {
    /// Always `true`.
    provisioned: bool,
    /// The Stigg customer id (the `orgId`).
    #[schema(example = "org_8Yp2")]
    stigg_customer_id: &'a str,
    /// The Stigg subscription id (the `stripeSubscriptionId`).
    #[schema(example = "sub_9Zx8Y7")]
    stigg_subscription_id: &'a str,
    // Both are set on a 200: the request only gets this far with valid trace headers.
    /// The `x-request-id` header.
    #[schema(value_type = String, required = true, example = "req-1")]
    request_id: Option<&'a str>,
    /// The `x-correlation-id` header.
    #[schema(value_type = String, required = true, example = "corr-1")]
    correlation_id: Option<&'a str>,
}

/// Provision a trial subscription in Stigg
///
/// Checks the organization, its Stripe customer and the subscription in the database, then
/// creates the Stigg customer (unless it exists) and the Stigg subscription, exactly once. A
/// repeated request is answered from the stored record without calling Stigg.
#[utoipa::path(
    post,
    path = "/api/stigg/provision",
    tag = "provisioning",
    operation_id = "provision",
    request_body(content = ProvisionRequestBody, content_type = "application/json"),
    params(
        ("x-request-id" = String, Header, pattern = r"^[\x21-\x7E]{1,128}$", min_length = 1, max_length = 128,
            description = "The caller's request id: 1 to 128 visible ASCII characters."),
        ("x-correlation-id" = String, Header, pattern = r"^[\x21-\x7E]{1,128}$", min_length = 1, max_length = 128,
            description = "Ties together every call of one business operation; passed on to Stigg."),
        ("x-tenant-id" = Option<String>, Header, nullable = false, pattern = r"^[\x21-\x7E]{1,128}$", min_length = 1, max_length = 128,
            description = "When given, the organization must belong to this tenant (else 404)."),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Provisioned now, or earlier (answered from the stored record).",
            body = ProvisionResponse, content_type = "application/json"),
        (status = 400, description = "A header or body rule is broken (`Content-Type` must be `application/json`; `Authorization` at most once), the plan code is unknown or not the subscription's, or the subscription's status is not provisioned (only `trialing`, `active` and `past_due` are); `details` names every offending field.",
            body = ErrorBody, content_type = "application/json"),
        (status = 401, description = "`API_TOKEN` is configured and the bearer token is missing or wrong.",
            body = ErrorBody, content_type = "application/json"),
        (status = 404, description = "Organization, Stripe customer of that organization, or subscription of that organization not found.",
            body = ErrorBody, content_type = "application/json"),
        (status = 405, description = "Any method but POST.",
            body = ErrorBody, content_type = "application/json",
            headers(("allow" = String, description = "`POST`"))),
        (status = 408, description = "The body did not arrive within 10 s of the headers.",
            body = ErrorBody, content_type = "application/json"),
        (status = 413, description = "The body is larger than 16 KiB; refused before it is parsed.",
            body = ErrorBody, content_type = "application/json"),
        (status = 500, description = "Stigg failed (after retries) or rejected the call, or the database failed; the message says what failed.",
            body = ErrorBody, content_type = "application/json"),
    )
)]
pub async fn provision(
    req: HttpRequest,
    body: Bytes,
    state: Data<AppState>,
    metrics: Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let headers = RequestHeaders::of(&req);
    let ids = headers.ids();
    let (request, ctx) = parse_request(
        &headers,
        req.headers().get(header::CONTENT_TYPE),
        &body,
        &state.catalog,
    )
    .map_err(|invalid| {
        metrics.provisionings().refused(ErrorCode::BadRequest);
        ApiError::invalid(invalid.message, invalid.details, &ids)
    })?;

    match state.provision.execute(&request, &ctx).await {
        Ok(done) => {
            info!(
                stigg_customer_id = %done.stigg_customer_id,
                stigg_subscription_id = %done.stigg_subscription_id,
                already_provisioned = done.already_provisioned,
                "provisioned"
            );
            metrics.provisionings().done(if done.already_provisioned {
                ALREADY_PROVISIONED
            } else {
                PROVISIONED
            });
            Ok(HttpResponse::Ok().json(ProvisionResponse {
                provisioned: true,
                stigg_customer_id: &done.stigg_customer_id,
                stigg_subscription_id: &done.stigg_subscription_id,
                request_id: ids.request_id.as_ref().map(|id| id.as_str()),
                correlation_id: ids.correlation_id.as_ref().map(|id| id.as_str()),
            }))
        }
        Err(failure) => {
            let answer = ApiError::from_failure(Failure::from(&failure), &ids);
            metrics.provisionings().refused(answer.code());
            if answer.code() == ErrorCode::Internal {
                // The full cause (driver or Stigg detail) goes to the log only.
                error!(error = %failure, "provisioning failed");
            } else {
                info!(error = %failure, "provisioning refused");
            }
            Err(answer)
        }
    }
}

/// The body's fields, as the contract names them.
const FIELDS: &[&str] = &[
    "orgId",
    "stripeCustomerId",
    "stripeSubscriptionId",
    "planCode",
];

/// Headers and body to the domain's request, or every offending header and field.
///
/// Pure (no I/O, no actix request): the handler calls it with the headers the API middleware
/// read, and the fuzz target (`fuzz/`) and the property tests call it directly, so what they
/// exercise is exactly what the route runs. `content_type` is the raw `Content-Type` header.
pub fn parse_request(
    headers: &RequestHeaders,
    content_type: Option<&HeaderValue>,
    body: &[u8],
    catalog: &PlanCatalog,
) -> Result<(ProvisionRequest, OperationContext), InvalidRequest> {
    let body = JsonObject::read(content_type, body, FIELDS).and_then(|body| {
        let raw = RawProvisionRequest {
            org_id: body.field("orgId"),
            stripe_customer_id: body.field("stripeCustomerId"),
            stripe_subscription_id: body.field("stripeSubscriptionId"),
            plan_code: body.field("planCode"),
        };
        ProvisionRequest::parse(&raw, catalog)
    });
    let (context, request) = request::both(operation_context(headers), body)?;
    Ok((request, context))
}

/// Who asks, from valid trace headers; every header that breaks its rule otherwise.
fn operation_context(headers: &RequestHeaders) -> Result<OperationContext, Vec<FieldError>> {
    match (
        &headers.request_id,
        &headers.correlation_id,
        &headers.tenant_id,
    ) {
        (Ok(_), Ok(correlation_id), Ok(tenant_id)) => Ok(OperationContext {
            correlation_id: correlation_id.clone(),
            tenant_id: tenant_id.clone(),
        }),
        _ => Err(headers.errors()),
    }
}
