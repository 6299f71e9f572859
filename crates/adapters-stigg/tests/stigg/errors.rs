//! Final errors: 4xx are rejected with Stigg's code, 401/403 never echo the key, and none of
//! them is retried.

use onboarding_adapters_stigg::{GatewayBuildError, HttpStiggGateway, StiggConfig};
use onboarding_domain::ports::{StiggError, StiggGateway};
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

use crate::support::*;

/// Final errors are not retried: exactly one call.
async fn answer_once(server: &MockServer, route: &str, answer: ResponseTemplate) {
    mount_post(server, route, answer, 1).await;
}

#[tokio::test]
async fn bad_input_is_rejected_with_stiggs_code_and_not_retried() -> TestResult {
    let server = MockServer::start().await;
    answer_once(
        &server,
        CREATE_CUSTOMER,
        stigg_error(400, "BadUserInput", "email must be an email"),
    )
    .await;
    let gateway = gateway_with(config_for(&server), RecordingSleeper::instant())?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    let expected = StiggError::Rejected {
        operation: "provision_customer",
        status: 400,
        code: "BadUserInput".into(),
        message: "email must be an email".into(),
    };
    assert_eq!(result, Err(expected.clone()));
    assert_eq!(
        expected.to_string(),
        "Stigg rejected the provision_customer request (HTTP 400 BadUserInput): email must be an email"
    );
    Ok(())
}

#[tokio::test]
async fn unknown_plan_is_rejected_with_the_nested_error_code() -> TestResult {
    let server = MockServer::start().await;
    answer_once(
        &server,
        CREATE_SUBSCRIPTION,
        ResponseTemplate::new(404).set_body_json(json!({
            "error": { "code": "PlanNotFound", "message": "Plan not found: plan-starter" }
        })),
    )
    .await;
    let gateway = gateway_with(config_for(&server), RecordingSleeper::instant())?;

    let result = gateway
        .provision_subscription(&trialing_subscription()?, &ctx15()?)
        .await;

    assert_eq!(
        result,
        Err(StiggError::Rejected {
            operation: "provision_subscription",
            status: 404,
            code: "PlanNotFound".into(),
            message: "Plan not found: plan-starter".into(),
        })
    );
    Ok(())
}

#[tokio::test]
async fn error_string_shape_and_long_messages_are_handled() -> TestResult {
    let server = MockServer::start().await;
    let long = "x".repeat(500);
    answer_once(
        &server,
        CREATE_CUSTOMER,
        ResponseTemplate::new(422)
            .set_body_json(json!({ "error": "unprocessable", "message": long })),
    )
    .await;
    let gateway = gateway_with(config_for(&server), RecordingSleeper::instant())?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    match result {
        Err(StiggError::Rejected {
            status: 422,
            code,
            message,
            ..
        }) => {
            assert_eq!(code, "unprocessable");
            assert!(message.chars().count() <= 201, "{}", message.len());
            assert!(message.starts_with("xxxx"));
        }
        other => panic!("unexpected {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn unauthorized_never_shows_the_key() -> TestResult {
    let server = MockServer::start().await;
    // Even a body that echoes the key must not leak it.
    answer_once(
        &server,
        CREATE_CUSTOMER,
        ResponseTemplate::new(401).set_body_json(json!({
            "error": { "code": "UNAUTHENTICATED", "message": format!("Invalid API key {API_KEY}") }
        })),
    )
    .await;
    let config = config_for(&server);
    let gateway = gateway_with(config.clone(), RecordingSleeper::instant())?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    assert_eq!(result, Err(StiggError::Unauthorized));
    let error = StiggError::Unauthorized;
    assert_eq!(error.to_string(), "Stigg rejected the API key");
    for shown in [
        format!("{result:?}"),
        error.to_string(),
        format!("{gateway:?}"),
        format!("{config:?}"),
    ] {
        assert!(!shown.contains(API_KEY), "key leaked in {shown}");
    }
    Ok(())
}

#[tokio::test]
async fn forbidden_is_unauthorized_too() -> TestResult {
    let server = MockServer::start().await;
    answer_once(
        &server,
        CREATE_SUBSCRIPTION,
        stigg_error(403, "IdentityForbidden", "scope missing"),
    )
    .await;
    let gateway = gateway_with(config_for(&server), RecordingSleeper::instant())?;

    let result = gateway
        .provision_subscription(&trialing_subscription()?, &ctx15()?)
        .await;

    assert_eq!(result, Err(StiggError::Unauthorized));
    Ok(())
}

#[tokio::test]
async fn a_redirect_is_not_followed() -> TestResult {
    let server = MockServer::start().await;
    answer_once(
        &server,
        CREATE_CUSTOMER,
        ResponseTemplate::new(307).insert_header("location", "http://elsewhere.test/steal"),
    )
    .await;
    let gateway = gateway_with(config_for(&server), RecordingSleeper::instant())?;

    let result = gateway.provision_customer(&customer()?, &ctx15()?).await;

    assert!(
        matches!(result, Err(StiggError::InvalidResponse { .. })),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn bad_configuration_is_refused_without_echoing_the_key() {
    let cases: Vec<(StiggConfig, &str)> = vec![
        (StiggConfig::new("not a url", API_KEY), "base URL"),
        (
            StiggConfig::new("ftp://stigg.test", API_KEY),
            "http or https",
        ),
        (
            StiggConfig {
                calls_per_minute: 0,
                ..StiggConfig::new("http://stigg.test", API_KEY)
            },
            "calls_per_minute",
        ),
        (
            StiggConfig {
                mutations_per_entity_per_minute: 0,
                ..StiggConfig::new("http://stigg.test", API_KEY)
            },
            "mutations_per_entity_per_minute",
        ),
        (
            StiggConfig::new("http://stigg.test", format!("{API_KEY}\n")),
            "API key",
        ),
        (StiggConfig::new("http://stigg.test", ""), "API key"),
    ];
    for (config, expected) in cases {
        match HttpStiggGateway::new(config) {
            Err(error @ GatewayBuildError::InvalidConfig(_)) => {
                let shown = format!("{error} {error:?}");
                assert!(shown.contains(expected), "{shown}");
                assert!(!shown.contains(API_KEY), "{shown}");
            }
            other => panic!("expected InvalidConfig for {expected}, got {other:?}"),
        }
    }
}
