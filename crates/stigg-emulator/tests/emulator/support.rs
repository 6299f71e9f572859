//! The harness: an emulator on a loopback port, a client that sends the right key, and
//! the bodies the tests send.

use std::net::SocketAddr;

use anyhow::ensure;
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use stigg_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, RunningEmulator};

pub type TestResult = anyhow::Result<()>;

pub const KEY: &str = DEFAULT_API_KEY;

pub struct Harness {
    pub running: RunningEmulator,
    pub client: Client,
}

pub async fn start() -> anyhow::Result<Harness> {
    start_with(EmulatorConfig::default()).await
}

pub async fn start_with(config: EmulatorConfig) -> anyhow::Result<Harness> {
    let running = RunningEmulator::start_on_loopback(config).await?;
    Ok(Harness {
        running,
        client: Client::new(),
    })
}

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl Harness {
    pub fn emulator(&self) -> &Emulator {
        self.running.emulator()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url())
    }

    /// A request with the right API key.
    pub fn api(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("X-API-KEY", KEY)
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Response> {
        Ok(self.api(Method::POST, path).json(body).send().await?)
    }

    pub async fn post_idempotent(
        &self,
        path: &str,
        key: &str,
        body: &Value,
    ) -> anyhow::Result<Response> {
        self.send_idempotent(Method::POST, path, key, body).await
    }

    /// A mutation (POST, PATCH) with an idempotency key.
    pub async fn send_idempotent(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: &Value,
    ) -> anyhow::Result<Response> {
        Ok(self
            .api(method, path)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await?)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Response> {
        Ok(self.api(Method::GET, path).send().await?)
    }

    pub async fn create_customer(&self, id: &str) -> anyhow::Result<Value> {
        let response = self.post("/api/v1/customers", &customer(id)).await?;
        ensure!(
            response.status() == StatusCode::CREATED,
            "customer {id}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }
}

pub fn customer(id: &str) -> Value {
    json!({
        "id": id,
        "name": "Example Org",
        "email": "owner@example.org",
        "billingId": "cus_A1",
        "metadata": {"orgId": id, "stripeCustomerId": "cus_A1"},
        "ignoredField": true,
    })
}

pub fn trial_subscription(id: &str, customer_id: &str) -> Value {
    json!({
        "id": id,
        "customerId": customer_id,
        "planId": "plan-pro",
        "billingPeriod": "MONTHLY",
        "billingId": id,
        "paymentCollectionMethod": "NONE",
        "startDate": "2030-01-01T00:00:00Z",
        "trialOverrideConfiguration": {
            "isTrial": true,
            "trialEndDate": "2030-01-15T00:00:00Z",
            "trialEndBehavior": "CONVERT_TO_PAID"
        },
        "metadata": {"orgId": customer_id, "stripeSubscriptionId": id, "planCode": "plan_pro_m"}
    })
}

pub async fn status_and_body(response: Response) -> anyhow::Result<(u16, Value)> {
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

pub fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}
