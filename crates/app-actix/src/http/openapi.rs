//! The OpenAPI 3.1 document of the service, generated from the handlers' `#[utoipa::path]`
//! attributes and the `ToSchema` types next to them. It is rendered once at start-up and served
//! at `GET /openapi.json`; `docs/openapi.json` is a committed copy, checked by a test.

use actix_web::web::Bytes;
use onboarding_domain::model::PlanCatalog;
use serde_json::Value;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDocument, RefOr};
use utoipa::{Modify, OpenApi};

use crate::config::built_in_plan_catalog;
use crate::failure::{ErrorCode, FieldErrorBody};
use crate::http::middleware::api::{CORRELATION_ID, REQUEST_ID};
use crate::http::routes;

/// The name of the bearer security scheme in the document.
const BEARER_SCHEME: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "onboarding",
        description = "Provisions an organization's trial subscription (created in Stripe) as a \
                       customer and a subscription in Stigg, exactly once."
    ),
    paths(
        routes::provision::provision,
        routes::stripe_webhooks::receive,
        routes::sync_state::event,
        routes::sync_state::subscription,
        routes::health::healthz,
        routes::health::readyz,
        routes::metrics::metrics,
        routes::openapi::openapi_json,
    ),
    components(schemas(ErrorCode, FieldErrorBody)),
    modifiers(&BearerToken, &EchoedTraceHeaders),
    tags(
        (name = "provisioning", description = "The API routes, under `/api`."),
        (name = "stripe", description = "Stripe's webhooks and the lifecycle sync's state."),
        (name = "operations", description = "Health, readiness, metrics and this document."),
    )
)]
pub struct ApiDoc;

/// Declares the bearer scheme the provisioning route lists as optional.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "Required only when the service runs with `API_TOKEN`; compared in constant time.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER_SCHEME, SecurityScheme::Http(scheme));
    }
}

/// Adds the trace headers to every response of the API routes: the API middleware echoes them
/// on every answer, whatever its status, so they are declared once here rather than on each
/// response of each route.
struct EchoedTraceHeaders;

impl Modify for EchoedTraceHeaders {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let header = |name: &str| {
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some(format!(
                    "The `{name}` request header, echoed when it was valid."
                )))
                .build()
        };
        let api_paths = openapi
            .paths
            .paths
            .iter_mut()
            .filter(|(path, _)| path.starts_with("/api/"));
        for (_, item) in api_paths {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        for name in [REQUEST_ID, CORRELATION_ID] {
                            response
                                .headers
                                .insert(name.to_owned(), RefOr::T(header(name)));
                        }
                    }
                }
            }
        }
    }
}

/// Lists the catalog's plan codes as the `planCode` enum. The contract accepts a plan code only
/// when it is in the catalog the service runs with; a pattern alone would call every
/// well-formed code valid, and callers (and Schemathesis' `positive_data_acceptance` check)
/// would then expect `plan_x` to be accepted. The catalog is configuration (`PLAN_CATALOG`),
/// so the served document lists the codes loaded at start-up.
struct CatalogPlanCodes(Vec<String>);

impl Modify for CatalogPlanCodes {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let request = openapi
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("ProvisionRequest"));
        let Some(RefOr::T(Schema::Object(request))) = request else {
            return;
        };
        if let Some(RefOr::T(Schema::Object(plan_code))) = request.properties.get_mut("planCode") {
            plan_code.enum_values = Some(self.0.iter().cloned().map(Value::from).collect());
        }
    }
}

/// The document for the shipped plan catalog (`config/plans.toml`) as pretty JSON with a
/// trailing newline, exactly as in `docs/openapi.json`.
pub fn render() -> anyhow::Result<String> {
    render_for(&built_in_plan_catalog()?)
}

/// The document for a plan catalog as pretty JSON with a trailing newline.
fn render_for(catalog: &PlanCatalog) -> anyhow::Result<String> {
    let mut codes: Vec<String> = catalog.plans().map(|p| p.code.to_string()).collect();
    // The catalog is a hash map; sorted, the document is the same from run to run.
    codes.sort();
    let mut document = ApiDoc::openapi();
    CatalogPlanCodes(codes).modify(&mut document);
    let mut json = document.to_pretty_json()?;
    json.push('\n');
    Ok(json)
}

/// The rendered document, shared by all workers; serving it is a reference-count increment.
#[derive(Debug, Clone)]
pub struct OpenApiJson(Bytes);

impl OpenApiJson {
    /// The document for the catalog the service runs with.
    pub fn render(catalog: &PlanCatalog) -> anyhow::Result<Self> {
        render_for(catalog).map(|json| Self(Bytes::from(json)))
    }

    pub fn bytes(&self) -> Bytes {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use onboarding_domain::input::FieldError;
    use onboarding_domain::model::{
        CorrelationId, OrgId, PlanCode, RequestId, StripeCustomerId, StripeSubscriptionId, TenantId,
    };
    use serde_json::Value;

    use super::*;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    /// `UPDATE_OPENAPI=1 cargo test -p onboarding-app --lib openapi` writes the file instead.
    #[test]
    fn committed_openapi_json_matches_the_code() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let generated = render().unwrap();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        assert!(
            committed == generated,
            "docs/openapi.json differs from the code from line {}; regenerate it with \
             `UPDATE_OPENAPI=1 cargo test -p onboarding-app --lib openapi` (or `just openapi`)",
            first_difference + 1
        );
    }

    fn pattern(schema: &Value) -> regex::Regex {
        let pattern = schema["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("no pattern in {schema}"));
        regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    /// Whether the domain accepts a raw value.
    type Accepts = fn(&str) -> bool;

    fn assert_agrees(name: &str, schema: &Value, parse: Accepts, samples: &[String]) {
        let pattern = pattern(schema);
        let min = schema["minLength"].as_u64().unwrap_or(0);
        let max = schema["maxLength"].as_u64().unwrap_or(u64::MAX);
        for sample in samples {
            let length = sample.chars().count() as u64;
            let documented = pattern.is_match(sample) && (min..=max).contains(&length);
            assert_eq!(
                documented,
                parse(sample),
                "{name}: the document and the domain disagree on {sample:?}"
            );
        }
    }

    fn samples(prefix: &str) -> Vec<String> {
        let mut samples: Vec<String> = [
            "",
            " ",
            "a",
            "A",
            "0",
            "_a",
            ".a",
            "-a",
            "a_b.c-d",
            "a b",
            "é",
            "plan_starter_m",
            "Plan",
            "a~!",
            "\u{7f}",
            "cus_A1",
            "cus_",
            "cus_a-b",
            "sub_A1",
            "sub_",
            "sub_a_b",
        ]
        .map(str::to_owned)
        .to_vec();
        for n in [63, 64, 65, 127, 128, 129, 249, 250, 251] {
            samples.push("a".repeat(n));
            samples.push(format!("{prefix}{}", "a".repeat(n)));
            samples.push("~".repeat(n));
        }
        samples
    }

    #[test]
    fn body_rules_are_the_domains() {
        let doc = document();
        let properties = &doc["components"]["schemas"]["ProvisionRequest"]["properties"];
        let cases: [(&str, &str, Accepts); 4] = [
            ("orgId", "org_", |s| OrgId::parse(s).is_ok()),
            ("stripeCustomerId", "cus_", |s| {
                StripeCustomerId::parse(s).is_ok()
            }),
            ("stripeSubscriptionId", "sub_", |s| {
                StripeSubscriptionId::parse(s).is_ok()
            }),
            ("planCode", "plan_", |s| PlanCode::parse(s).is_ok()),
        ];
        for (field, prefix, parse) in cases {
            assert_agrees(field, &properties[field], parse, &samples(prefix));
        }
    }

    #[test]
    fn header_rules_are_the_domains() {
        let doc = document();
        let parameters = doc["paths"]["/api/stigg/provision"]["post"]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let cases: [(&str, bool, Accepts); 3] = [
            (REQUEST_ID, true, |s| RequestId::parse(s).is_ok()),
            (CORRELATION_ID, true, |s| CorrelationId::parse(s).is_ok()),
            ("x-tenant-id", false, |s| TenantId::parse(s).is_ok()),
        ];
        for (name, required, parse) in cases {
            let parameter = parameters
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("no parameter {name}"));
            assert_eq!(parameter["in"], "header", "{name}");
            assert_eq!(parameter["required"], required, "{name}");
            assert_agrees(name, &parameter["schema"], parse, &samples("x-"));
        }
    }

    #[test]
    fn field_error_schema_has_the_domains_fields() {
        let doc = document();
        let serialized = serde_json::to_value(FieldError::new("planCode", "unknown")).unwrap();
        let mut fields: Vec<&String> = serialized
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        let schema = &doc["components"]["schemas"]["FieldError"];
        let mut documented: Vec<&String> = schema["properties"]
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        fields.sort();
        documented.sort();
        assert_eq!(fields, documented);
    }
}
