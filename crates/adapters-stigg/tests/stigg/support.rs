//! Shared fixtures: sample provisionings, Stigg's answers and wiremock routes for them, and a
//! recording observer; the recording sleeper and deterministic jitter come from
//! `onboarding-adapters-http`'s test support.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use onboarding_adapters_http::test_support::ceiling_jitter;
pub use onboarding_adapters_http::test_support::{RecordingSleeper, SeededJitter};
use onboarding_adapters_stigg::{
    CallEvent, CallObserver, HttpStiggGateway, HttpStiggGatewayBuilder, StiggConfig,
};
use onboarding_domain::model::{
    BillingPeriod, CorrelationId, OrgId, Plan, PlanCode, StripeCustomerId, StripeSubscriptionId,
    TenantId,
};
use onboarding_domain::ports::{
    CallContext, CustomerProvisioning, StiggError, SubscriptionCreation, SubscriptionProvisioning,
    TrialConfiguration,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const API_KEY: &str = "server-test-key-7f3a9c";
pub const USER_AGENT: &str = "onboarding-tests/1.0";
pub const CORRELATION_ID: &str = "corr-42";
pub const ORG_ID: &str = "org_8Yp2";
pub const STRIPE_CUSTOMER: &str = "cus_Q1w2E3";
pub const STRIPE_SUBSCRIPTION: &str = "sub_9Zx8Y7";

pub const CREATE_CUSTOMER: &str = "/api/v1/customers";
pub const CREATE_SUBSCRIPTION: &str = "/api/v1/subscriptions";
pub const READ_CUSTOMER: &str = "/api/v1/customers/org_8Yp2";
pub const READ_SUBSCRIPTION: &str = "/api/v1/subscriptions/sub_9Zx8Y7";

/// The id Stigg assigned to a subscription created after a resume or a plan change.
pub const STIGG_SUBSCRIPTION: &str = "subscription-7a1c";
pub const STIGG_SUBSCRIPTION_PATH: &str = "/api/v1/subscriptions/subscription-7a1c";
pub const CANCEL_SUBSCRIPTION: &str = "/api/v1/subscriptions/subscription-7a1c/cancel";
pub const ARCHIVE_CUSTOMER: &str = "/api/v1/customers/org_8Yp2/archive";
/// A key as the sync computes one (`Move::idempotency_key`).
pub const MOVE_KEY: &str = "sync:sub_9Zx8Y7:3:move";

/// So many calls per minute that the rate limits never wait, unless a test says otherwise.
pub const UNLIMITED: u32 = 60_000_000;

pub fn config(base_url: &str) -> StiggConfig {
    let mut config = StiggConfig::new(base_url, API_KEY);
    config.user_agent = USER_AGENT.into();
    config.calls_per_minute = UNLIMITED;
    config.mutations_per_entity_per_minute = UNLIMITED;
    config
}

pub fn config_for(server: &MockServer) -> StiggConfig {
    config(&server.uri())
}

pub fn ctx(within: Duration) -> Result<CallContext, Box<dyn std::error::Error>> {
    Ok(CallContext {
        correlation_id: CorrelationId::parse(CORRELATION_ID)?,
        deadline: Instant::now() + within,
    })
}

pub fn ctx15() -> Result<CallContext, Box<dyn std::error::Error>> {
    ctx(Duration::from_secs(15))
}

pub fn customer() -> Result<CustomerProvisioning, Box<dyn std::error::Error>> {
    Ok(CustomerProvisioning {
        customer_id: OrgId::parse(ORG_ID)?,
        name: "Acme Inc".into(),
        email: Some("owner@acme.test".into()),
        billing_id: StripeCustomerId::parse(STRIPE_CUSTOMER)?,
        tenant_id: Some(TenantId::parse("tenant-1")?),
        renewal: None,
    })
}

pub fn trial_end() -> Result<DateTime<Utc>, Box<dyn std::error::Error>> {
    Ok(DateTime::parse_from_rfc3339("2030-01-15T00:00:00Z")?.with_timezone(&Utc))
}

pub fn subscription(
    trial: Option<TrialConfiguration>,
) -> Result<SubscriptionProvisioning, Box<dyn std::error::Error>> {
    Ok(SubscriptionProvisioning {
        subscription_id: StripeSubscriptionId::parse(STRIPE_SUBSCRIPTION)?,
        customer_id: OrgId::parse(ORG_ID)?,
        plan_code: PlanCode::parse("plan_starter_m")?,
        stigg_plan_id: "plan-starter".into(),
        billing_period: BillingPeriod::Monthly,
        trial,
        renewal: None,
    })
}

pub fn trialing_subscription() -> Result<SubscriptionProvisioning, Box<dyn std::error::Error>> {
    subscription(Some(TrialConfiguration {
        ends_at: Some(trial_end()?),
    }))
}

/// A subscription to create after a plan change, on the Pro plan, in trial when `trial_end`.
pub fn creation(
    trial_end: Option<DateTime<Utc>>,
) -> Result<SubscriptionCreation, Box<dyn std::error::Error>> {
    Ok(SubscriptionCreation {
        customer_id: OrgId::parse(ORG_ID)?,
        stripe_subscription_id: StripeSubscriptionId::parse(STRIPE_SUBSCRIPTION)?,
        plan: Plan {
            code: PlanCode::parse("plan_pro_m")?,
            stigg_plan_id: "plan-pro".into(),
            billing_period: BillingPeriod::Monthly,
        },
        trial_end,
    })
}

/// The subscription Stigg assigned `STIGG_SUBSCRIPTION`, as its answers show it, with
/// `changes` over the Pro plan in trial.
pub fn assigned_record(changes: Value) -> Value {
    let mut record = subscription_record("plan-pro", "MONTHLY");
    record["id"] = json!(STIGG_SUBSCRIPTION);
    record["cancellationDate"] = Value::Null;
    if let (Some(record), Value::Object(changes)) = (record.as_object_mut(), changes) {
        record.extend(changes);
    }
    record
}

/// Stigg's documented answer to a customer create.
pub fn customer_created() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({ "data": {
        "id": ORG_ID, "name": "Acme Inc", "email": "owner@acme.test",
        "billingId": STRIPE_CUSTOMER, "billingCurrency": null,
        "metadata": { "orgId": ORG_ID, "stripeCustomerId": STRIPE_CUSTOMER },
        "couponId": null, "defaultPaymentMethod": null, "integrations": [],
        "language": null, "timezone": null,
        "createdAt": "2026-08-20T10:00:00.000Z", "updatedAt": "2026-08-20T10:00:00.000Z",
        "archivedAt": null
    }}))
}

/// A subscription as Stigg describes it (inside a provisioning answer or a GET).
pub fn subscription_record(plan_id: &str, billing_period: &str) -> Value {
    json!({
        "id": STRIPE_SUBSCRIPTION, "customerId": ORG_ID, "planId": plan_id,
        "billingId": STRIPE_SUBSCRIPTION, "billingPeriod": billing_period,
        "status": "IN_TRIAL", "pricingType": "PAID", "paymentCollection": "NOT_REQUIRED",
        "createdAt": "2026-08-20T10:00:01Z", "startDate": "2026-08-20T10:00:00Z",
        "trialEndDate": "2030-01-15T00:00:00Z", "trial": { "trialEndBehavior": "CONVERT_TO_PAID" },
        "metadata": { "stripeSubscriptionId": STRIPE_SUBSCRIPTION }
    })
}

/// Stigg's documented answer to a subscription create.
pub fn subscription_provisioned(status: &str) -> ResponseTemplate {
    let subscription =
        (status == "SUCCESS").then(|| subscription_record("plan-starter", "MONTHLY"));
    ResponseTemplate::new(201).set_body_json(json!({ "data": {
        "id": STRIPE_SUBSCRIPTION, "status": status, "isScheduled": false,
        "entitlements": [], "subscription": subscription
    }}))
}

/// Stigg's answer to a read of an entity it has.
pub fn found(record: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "data": record }))
}

pub fn stigg_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "code": code, "message": message }))
}

/// Stigg's answer to a create of an entity that exists already.
pub fn duplicate() -> ResponseTemplate {
    stigg_error(
        409,
        "DuplicatedEntityNotAllowed",
        "Duplicated entity not allowed",
    )
}

pub fn too_many_requests() -> ResponseTemplate {
    stigg_error(429, "RateLimitExceeded", "Too many requests")
}

/// A route of the mock Stigg: `verb` requests to `route` get `answer`.
pub fn stigg_route(verb: &str, route: &str, answer: ResponseTemplate) -> Mock {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(answer)
}

/// Answers every POST to `route` with `answer`; the server checks on drop that exactly `times`
/// came.
pub async fn mount_post(server: &MockServer, route: &str, answer: ResponseTemplate, times: u64) {
    stigg_route("POST", route, answer)
        .expect(times)
        .mount(server)
        .await;
}

/// Answers only the first `times` POSTs to `route` with `answer`, and expects all of them; later
/// POSTs go to the routes mounted after this one.
pub async fn mount_post_first(
    server: &MockServer,
    route: &str,
    answer: ResponseTemplate,
    times: u64,
) {
    stigg_route("POST", route, answer)
        .up_to_n_times(times)
        .expect(times)
        .mount(server)
        .await;
}

/// Answers every GET to `route` with `answer`, expecting exactly one.
pub async fn mount_get_once(server: &MockServer, route: &str, answer: ResponseTemplate) {
    stigg_route("GET", route, answer)
        .expect(1)
        .mount(server)
        .await;
}

/// What the adapter reports when it runs out of attempts (or of time) on transient failures.
pub fn unavailable(attempts: u32, cause: &str) -> StiggError {
    StiggError::Unavailable {
        attempts,
        cause: cause.into(),
    }
}

pub fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

/// Records every observer event.
#[derive(Debug, Default)]
pub struct RecordingObserver {
    events: Mutex<Vec<CallEvent>>,
}

impl RecordingObserver {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn outcomes(&self) -> Vec<(&'static str, &'static str)> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|e| (e.operation.as_str(), e.outcome.as_str()))
            .collect()
    }
}

impl CallObserver for RecordingObserver {
    fn observe(&self, event: CallEvent) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}

/// A gateway builder whose sleeps go to `sleeper` and whose jitter always picks the ceiling, so
/// that delays are exact.
pub fn builder_with(
    config: StiggConfig,
    sleeper: Arc<RecordingSleeper>,
) -> HttpStiggGatewayBuilder {
    HttpStiggGateway::builder(config)
        .sleeper(sleeper)
        .jitter(ceiling_jitter())
}

/// A gateway whose sleeps go to `sleeper` and whose jitter always picks the ceiling.
pub fn gateway_with(
    config: StiggConfig,
    sleeper: Arc<RecordingSleeper>,
) -> Result<HttpStiggGateway, Box<dyn std::error::Error>> {
    Ok(builder_with(config, sleeper).build()?)
}
