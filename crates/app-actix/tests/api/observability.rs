//! `GET /metrics` and `GET /openapi.json` against the real server and the Stigg emulator.

use serde_json::{Value, json};
use stigg_emulator::{Fault, Scoped};

use crate::helpers::{TestApp, acme_body, read, spawn_app};

/// The instance's metrics, with the response's content type.
async fn scrape(app: &TestApp) -> (String, String) {
    app.get_ok("/metrics").await
}

/// The value of the sample `name{labels}`, matching the label set exactly (in any order).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, label_text) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let mut found: Vec<String> = label_text
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            found.sort();
            (series_name == name && found == wanted)
                .then(|| value.parse().ok())
                .flatten()
        })
}

fn requests(text: &str, method: &str, route: &str, status: &str) -> Option<f64> {
    sample(
        text,
        "onboarding_http_requests_total",
        &[("method", method), ("route", route), ("status", status)],
    )
}

fn stigg_calls(text: &str, operation: &str, outcome: &str) -> Option<f64> {
    sample(
        text,
        "onboarding_stigg_calls_total",
        &[("operation", operation), ("outcome", outcome)],
    )
}

fn provisionings(text: &str, outcome: &str) -> Option<f64> {
    sample(
        text,
        "onboarding_provisionings_total",
        &[("outcome", outcome)],
    )
}

const ROUTE: &str = "/api/stigg/provision";

#[tokio::test]
async fn requests_are_counted_by_route_pattern_and_status() {
    let app = spawn_app().await;
    app.seed_acme().await;
    let (status, body) = app.provision(&acme_body(), "req-ok").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.provision(&json!({ "orgId": 7 }), "req-bad").await;
    assert_eq!(status, 400, "{body}");
    for path in ["/no/such/route", "/api/no/such/route"] {
        let (status, _) = read(
            app.client
                .get(format!("{}{path}", app.address))
                .send()
                .await
                .expect("the service answers"),
        )
        .await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = read(
        app.client
            .get(format!("{}{ROUTE}", app.address))
            .send()
            .await
            .expect("the service answers"),
    )
    .await;
    assert_eq!(status, 405);

    let (content_type, text) = scrape(&app).await;
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(requests(&text, "POST", ROUTE, "200"), Some(1.0), "{text}");
    assert_eq!(requests(&text, "POST", ROUTE, "400"), Some(1.0), "{text}");
    assert_eq!(requests(&text, "GET", ROUTE, "405"), Some(1.0), "{text}");
    assert_eq!(
        requests(&text, "GET", "unmatched", "404"),
        Some(2.0),
        "{text}"
    );
    assert!(
        !text.contains("/no/such/route"),
        "raw path as a label: {text}"
    );
    assert_eq!(
        sample(
            &text,
            "onboarding_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", ROUTE)],
        ),
        Some(2.0),
        "{text}"
    );

    // The scrape itself is counted under its own route, once it has answered.
    let (_, text) = scrape(&app).await;
    assert_eq!(
        requests(&text, "GET", "/metrics", "200"),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn stigg_calls_and_provisioning_outcomes_are_counted() {
    let app = spawn_app().await;
    let (_, text) = scrape(&app).await;
    // Created at zero, so that rates and alerts see them before the first event.
    assert_eq!(
        stigg_calls(&text, "provision_customer", "failed"),
        Some(0.0)
    );
    assert_eq!(provisionings(&text, "provisioned"), Some(0.0));

    app.seed_acme().await;
    assert_eq!(app.provision(&acme_body(), "req-1").await.0, 200);
    assert_eq!(app.provision(&acme_body(), "req-2").await.0, 200);
    let mut unknown = acme_body();
    unknown["orgId"] = Value::from("org_unknown");
    assert_eq!(app.provision(&unknown, "req-3").await.0, 404);
    let mut invalid = acme_body();
    invalid["planCode"] = Value::from("Not A Plan");
    assert_eq!(app.provision(&invalid, "req-4").await.0, 400);

    let (_, text) = scrape(&app).await;
    assert_eq!(
        stigg_calls(&text, "provision_customer", "success"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        stigg_calls(&text, "provision_subscription", "success"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        stigg_calls(&text, "provision_customer", "retried"),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            "onboarding_stigg_call_duration_seconds_count",
            &[
                ("operation", "provision_subscription"),
                ("outcome", "success")
            ],
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(provisionings(&text, "provisioned"), Some(1.0), "{text}");
    assert_eq!(
        provisionings(&text, "already_provisioned"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(provisionings(&text, "not_found"), Some(1.0), "{text}");
    assert_eq!(provisionings(&text, "bad_request"), Some(1.0), "{text}");
    assert_eq!(provisionings(&text, "failed"), Some(0.0), "{text}");
}

#[tokio::test]
async fn failed_and_retried_stigg_calls_are_counted() {
    let app = spawn_app().await;
    app.seed_acme().await;
    let emulator = app.stigg.emulator();

    // Every attempt fails: the call and the request fail.
    emulator.push_fault(Fault::status(503).on_path("/api/v1/customers").times(100));
    let (status, body) = app.provision(&acme_body(), "req-1").await;
    assert_eq!(status, 500, "{body}");
    emulator.clear_faults();
    let (_, text) = scrape(&app).await;
    assert_eq!(
        stigg_calls(&text, "provision_customer", "failed"),
        Some(1.0),
        "{text}"
    );
    let retried_before = stigg_calls(&text, "provision_customer", "retried").unwrap_or_default();
    assert!(retried_before >= 1.0, "{text}");
    assert_eq!(provisionings(&text, "failed"), Some(1.0), "{text}");
    assert_eq!(requests(&text, "POST", ROUTE, "500"), Some(1.0), "{text}");

    // One 503, then success: one more retried attempt, and a successful call.
    emulator.push_fault(Fault::status(503).on_path("/api/v1/customers"));
    let (status, body) = app.provision(&acme_body(), "req-2").await;
    assert_eq!(status, 200, "{body}");
    let (_, text) = scrape(&app).await;
    assert_eq!(
        stigg_calls(&text, "provision_customer", "retried"),
        Some(retried_before + 1.0),
        "{text}"
    );
    assert_eq!(
        stigg_calls(&text, "provision_customer", "success"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(provisionings(&text, "provisioned"), Some(1.0), "{text}");
}

#[tokio::test]
async fn each_instance_has_its_own_registry() {
    let first = spawn_app().await;
    let second = spawn_app().await;
    let (status, _) = first.provision(&json!({}), "req-1").await;
    assert_eq!(status, 400);

    let (_, text) = scrape(&first).await;
    assert_eq!(requests(&text, "POST", ROUTE, "400"), Some(1.0), "{text}");
    let (_, text) = scrape(&second).await;
    assert_eq!(requests(&text, "POST", ROUTE, "400"), None, "{text}");
}

async fn openapi(app: &TestApp) -> (String, String) {
    app.get_ok("/openapi.json").await
}

#[tokio::test]
async fn openapi_document_describes_the_provisioning_route() {
    let app = spawn_app().await;
    let (content_type, text) = openapi(&app).await;
    assert_eq!(content_type, "application/json");
    let doc: Value = serde_json::from_str(&text).expect("the OpenAPI document is JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );

    let operation = &doc["paths"][ROUTE]["post"];
    let responses = operation["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("no responses: {operation}"));
    let mut statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        ["200", "400", "401", "404", "405", "408", "413", "500"]
    );
    for (status, response) in responses {
        let content = response["content"].as_object();
        let types: Vec<&String> = content.map(|c| c.keys().collect()).unwrap_or_default();
        assert_eq!(types, ["application/json"], "{status}");
        for header in ["x-request-id", "x-correlation-id"] {
            assert!(
                response["headers"][header].is_object(),
                "{status} lacks {header}"
            );
        }
    }
    assert_eq!(
        responses["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ProvisionResponse"
    );
    assert_eq!(
        responses["400"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorResponse"
    );
    assert_eq!(
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ProvisionRequest"
    );

    let schemas = &doc["components"]["schemas"];
    let mut required: Vec<&str> = schemas["ProvisionRequest"]["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    required.sort_unstable();
    assert_eq!(
        required,
        [
            "orgId",
            "planCode",
            "stripeCustomerId",
            "stripeSubscriptionId"
        ]
    );
    assert_ne!(
        schemas["ProvisionRequest"]["additionalProperties"],
        json!(false),
        "unknown fields must be allowed"
    );
    let codes = schemas["ErrorCode"]["enum"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for code in [
        "BAD_REQUEST",
        "UNAUTHORIZED",
        "NOT_FOUND",
        "PAYLOAD_TOO_LARGE",
        "INTERNAL",
    ] {
        assert!(
            codes.contains(&json!(code)),
            "{code} missing from {codes:?}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    assert_eq!(
        doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
            .as_object()
            .map(|c| c.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["text/plain; version=0.0.4".to_owned()])
    );
    let readyz = doc["paths"]["/readyz"]["get"]["responses"]
        .as_object()
        .map(|r| r.keys().cloned().collect::<Vec<_>>());
    assert_eq!(readyz, Some(vec!["200".to_owned(), "503".to_owned()]));
}

#[tokio::test]
async fn served_document_is_the_rendered_one() {
    let app = spawn_app().await;
    let (_, served) = openapi(&app).await;
    let rendered = onboarding_app::http::openapi::render().expect("the OpenAPI document renders");
    assert!(
        served == rendered,
        "GET /openapi.json is not the rendered document"
    );
}
