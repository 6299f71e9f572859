//! A started emulator with a webhook receiver, and shorthands for its API and admin routes.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use anyhow::{Context, ensure};
use reqwest::header::HeaderMap;
use reqwest::{Client, Method};
use serde_json::{Value, json};
use stripe_emulator::{
    DEFAULT_API_KEY, Emulator, EmulatorConfig, NewCustomer, NewSubscription, PriceSpec,
    RetryPolicy, RunningEmulator, WebhookEndpoint,
};

pub const SECRET: &str = "whsec_emulator_test";
pub const KEY: &str = DEFAULT_API_KEY;
pub const WAIT: Duration = Duration::from_secs(10);

/// Retries fast enough for tests: 20 ms, 40 ms, 80 ms.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(20),
        max_attempts: 4,
        ..RetryPolicy::default()
    }
}

pub struct Harness {
    pub running: RunningEmulator,
    pub receiver: Receiver,
    client: Client,
}

/// An emulator delivering to a fresh receiver, with quick retries.
pub async fn start() -> anyhow::Result<Harness> {
    start_with(EmulatorConfig {
        retry: quick_retries(),
        ..EmulatorConfig::default()
    })
    .await
}

/// An emulator with `config`, delivering to a fresh receiver unless `config` names an endpoint.
pub async fn start_with(mut config: EmulatorConfig) -> anyhow::Result<Harness> {
    let receiver = Receiver::start().await?;
    if config.webhook.is_none() {
        config.webhook = Some(endpoint(&receiver.url, SECRET)?);
    }
    let running = RunningEmulator::start_on_loopback(config).await?;
    Ok(Harness {
        running,
        receiver,
        client: Client::new(),
    })
}

pub fn endpoint(url: &str, secrets: &str) -> anyhow::Result<WebhookEndpoint> {
    WebhookEndpoint::new(url, secrets).map_err(anyhow::Error::msg)
}

pub fn price(id: &str, lookup_key: &str) -> PriceSpec {
    PriceSpec {
        id: id.to_owned(),
        lookup_key: Some(lookup_key.to_owned()),
        interval: Default::default(),
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An answer's status, headers and JSON body.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

impl Harness {
    pub fn emulator(&self) -> &Emulator {
        self.running.emulator()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url())
    }

    /// `GET` on the API with the right key.
    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        let request = self.client.get(self.url(path)).bearer_auth(KEY);
        answer(request).await
    }

    /// An admin request with a JSON body (`Value::Null`: none).
    pub async fn admin(&self, method: Method, path: &str, body: Value) -> anyhow::Result<Answer> {
        let mut request = self
            .client
            .request(method, self.url(&format!("/_emulator{path}")));
        if !body.is_null() {
            request = request.json(&body);
        }
        answer(request).await
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> anyhow::Result<Answer> {
        self.admin(Method::POST, path, body).await
    }

    /// A customer made through the handle; its id.
    pub fn customer(&self) -> anyhow::Result<String> {
        let change = self.emulator().create_customer(NewCustomer {
            email: Some("owner@example.org".to_owned()),
            ..NewCustomer::default()
        })?;
        string(&change.object["id"])
    }

    /// An active subscription made through the handle; its id.
    pub fn subscription(&self, customer: &str) -> anyhow::Result<String> {
        let new = NewSubscription::new(customer, price("price_pro_m", "plan_pro_m"));
        let change = self.emulator().create_subscription(new)?;
        string(&change.object["id"])
    }

    pub async fn settle(&self) -> anyhow::Result<()> {
        ensure!(
            self.emulator().wait_for_deliveries(WAIT).await,
            "deliveries still under way after {WAIT:?}"
        );
        Ok(())
    }
}

async fn answer(request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.context("a JSON body")?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

pub fn string(value: &Value) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{value} is not a string"))
}

/// The `type` of each event, in order.
pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// One delivery as the receiver got it.
#[derive(Clone, Debug)]
pub struct Received {
    pub signature: Option<String>,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Received {
    pub fn event(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| json!({}))
    }

    pub fn event_id(&self) -> String {
        self.event()["id"].as_str().unwrap_or_default().to_owned()
    }
}

#[derive(Default)]
struct Inbox {
    received: Vec<Received>,
    /// Statuses to answer, in order; 200 once used up.
    answers: VecDeque<u16>,
}

/// A webhook endpoint on a loopback port that records what it receives and answers as told.
pub struct Receiver {
    pub url: String,
    inbox: Arc<Mutex<Inbox>>,
    handle: ServerHandle,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let url = format!("http://{}/webhooks", listener.local_addr()?);
        let shared = web::Data::from(inbox.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self { url, inbox, handle })
    }

    /// The next deliveries are answered with these statuses, in order.
    pub fn answer_with(&self, statuses: &[u16]) {
        self.lock().answers.extend(statuses);
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Waits until `count` deliveries arrived; all of them.
    pub async fn wait_for(&self, count: usize) -> anyhow::Result<Vec<Received>> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let received = self.received();
            if received.len() >= count {
                return Ok(received);
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "{} deliveries after {WAIT:?}, {count} expected",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn receive(
    inbox: web::Data<Mutex<Inbox>>,
    request: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let mut inbox = inbox
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    inbox.received.push(Received {
        signature: header("stripe-signature"),
        content_type: header("content-type"),
        body,
    });
    let status = inbox.answers.pop_front().unwrap_or(200);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
        .json(json!({"received": true}))
}
