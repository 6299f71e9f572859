//! A real server on port 0, a fresh database (SQLite file or PostgreSQL database) and the
//! Stigg emulator, driven over HTTP. Tables are seeded with the contract's plain SQL, as
//! outside tools do.

use clap::Parser;
use onboarding_adapters_db::Backend;
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_app::cli::Cli;
use onboarding_app::startup::Application;
use onboarding_domain::ports::DebugLogEntry;
use serde_json::{Value, json};
use stigg_emulator::{EmulatorConfig, RunningEmulator};
use stripe_emulator::{
    EmulatorConfig as StripeEmulatorConfig, RunningEmulator as StripeEmulator, WebhookEndpoint,
};

pub use crate::db_proxy::DbProxy;

pub const STIGG_KEY: &str = "server-test-key-7f3a";
pub const STRIPE_KEY: &str = "rk_test_service7f3a";
/// The secrets the service accepts: the second one is what a rotation adds.
pub const WEBHOOK_SECRETS: &str = "whsec_old7f3a,whsec_new7f3a";

/// Request ids of the requests [`TestApp::settle_debug_log`] sends.
const SETTLE_PREFIX: &str = "settle-";
static SETTLES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// SQL condition: a `debug_logs` row that is not a settling request's.
pub const NOT_SETTLING: &str = "(request_id IS NULL OR request_id NOT LIKE 'settle-%')";

/// One test per backend for each named `async fn(Backend)`, in modules `sqlite` and `postgres`.
pub(crate) use onboarding_adapters_db::on_both_backends;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub stigg: RunningEmulator,
    /// Stripe: the service re-reads from it, and it delivers its events, signed, to the
    /// service's webhook route.
    pub stripe: StripeEmulator,
    pub db: TestDatabase,
    /// The arguments the server was started with, to start peers on the same database.
    args: Vec<String>,
    /// In front of PostgreSQL, when the test asked for one.
    pub db_proxy: Option<DbProxy>,
}

pub struct Options {
    pub backend: Backend,
    pub api_token: Option<&'static str>,
    /// The key the service sends; the emulator always expects [`STIGG_KEY`].
    pub service_stigg_key: &'static str,
    pub extra_args: Vec<String>,
    /// Put a proxy between the service and PostgreSQL, so the test can cut the database off.
    pub db_proxy: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            api_token: None,
            service_stigg_key: STIGG_KEY,
            extra_args: Vec::new(),
            db_proxy: false,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_on(backend: Backend) -> TestApp {
    spawn_app_with(Options {
        backend,
        ..Options::default()
    })
    .await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    onboarding_app::telemetry::init_for_tests();
    let db = TestDatabase::new(options.backend).await;
    let stigg = RunningEmulator::start_on_loopback(EmulatorConfig {
        api_key: STIGG_KEY.into(),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the Stigg emulator starts");
    let stripe = StripeEmulator::start_on_loopback(StripeEmulatorConfig {
        api_key: STRIPE_KEY.into(),
        ..StripeEmulatorConfig::default()
    })
    .await
    .expect("the Stripe emulator starts");
    let db_proxy = if options.db_proxy {
        Some(DbProxy::start(db.url()).await)
    } else {
        None
    };
    let database_url = db_proxy
        .as_ref()
        .map_or_else(|| db.url().to_owned(), DbProxy::url);

    let mut args = vec![
        "onboarding".to_owned(),
        format!("--database-url={database_url}"),
        "--bind-addr=127.0.0.1:0".to_owned(),
        format!("--stigg-api-url={}", stigg.base_url()),
        format!("--stigg-api-key={}", options.service_stigg_key),
        // Short waits keep failure tests fast; the policy is the same.
        "--stigg-attempt-timeout-ms=2000".to_owned(),
        "--provisioning-deadline-ms=8000".to_owned(),
        format!("--stripe-api-url={}", stripe.base_url()),
        format!("--stripe-api-key={STRIPE_KEY}"),
        format!("--stripe-webhook-secret={WEBHOOK_SECRETS}"),
    ];
    if let Some(token) = options.api_token {
        args.push(format!("--api-token={token}"));
    }
    // A test's own value for a flag replaces the default above.
    let flag = |arg: &str| arg.split('=').next().unwrap_or_default().to_owned();
    let overridden: Vec<_> = options.extra_args.iter().map(|a| flag(a)).collect();
    args.retain(|arg| !overridden.contains(&flag(arg)));
    args.extend(options.extra_args);
    let address = start_server(&args).await;
    stripe.set_webhook(Some(
        WebhookEndpoint::new(&format!("{address}/api/stripe/webhooks"), "whsec_new7f3a")
            .expect("a webhook endpoint"),
    ));
    TestApp {
        address,
        client: reqwest::Client::new(),
        stigg,
        stripe,
        db,
        args,
        db_proxy,
    }
}

/// Builds and starts the application; returns its base URL.
async fn start_server(args: &[String]) -> String {
    let cli = Cli::try_parse_from(args).expect("the test's arguments parse");
    let app = Application::build(&cli.settings, &cli.server)
        .await
        .expect("the service starts");
    let address = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped());
    address
}

impl TestApp {
    /// Another instance of the service on the same database and Stigg: its base URL.
    pub async fn start_peer(&self) -> String {
        start_server(&self.args).await
    }

    /// `GET path`, which must answer 200: its content type and body.
    pub async fn get_ok(&self, path: &str) -> (String, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the service answers the GET");
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("the GET answer's body");
        (content_type, text)
    }

    /// Runs plain SQL against the service's database, as an outside tool would.
    pub async fn exec(&self, sql: &str) {
        self.db.execute(sql).await.expect("the test's SQL runs");
    }

    /// The number a query selects as `n`.
    pub async fn count(&self, sql: &str) -> i64 {
        self.db
            .count(sql)
            .await
            .expect("the test's count query runs")
    }

    /// The debug-log rows of `request_id`, once written: the service writes them just after
    /// answering, off the request path (ADR 0005).
    pub async fn debug_rows(&self, request_id: &str) -> Vec<DebugLogEntry> {
        let read = || async {
            self.db
                .debug_logs_for_request(request_id)
                .await
                .expect("the debug log can be read")
        };
        self.settle_debug_log().await;
        read().await
    }

    /// Rows of `debug_logs` matching `condition`, once every request answered so far has its
    /// row written; the settling requests' own rows are left out.
    pub async fn debug_log_count_where(&self, condition: &str) -> i64 {
        self.settle_debug_log().await;
        self.count(&format!(
            "SELECT count(*) AS n FROM debug_logs WHERE ({condition}) AND {NOT_SETTLING}"
        ))
        .await
    }

    /// Waits until the debug-log rows of every request answered so far are written. The writer
    /// keeps arrival order, so it sends one more API request and waits (up to 10 s) for that
    /// request's row. Rows held back by a database outage come later: poll for those.
    pub async fn settle_debug_log(&self) {
        let marker = format!(
            "{SETTLE_PREFIX}{}",
            SETTLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        // Any answer will do (400 here, or 401 when a token is required): every API answer
        // writes a row.
        self.client
            .post(format!("{}/api/stigg/provision", self.address))
            .header("x-request-id", &marker)
            .header("x-correlation-id", "settle")
            .json(&json!({}))
            .send()
            .await
            .expect("the service answers the settling request");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let written = self
                .db
                .debug_logs_for_request(&marker)
                .await
                .expect("the debug log can be read");
            if !written.is_empty() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the debug-log row of {marker} was not written within 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// The contract's seed: organization `org_1` (`cus_A1`, tenant `tenant-a`) with trialing
    /// `sub_A1` on `plan_starter_m`.
    pub async fn seed_acme(&self) {
        self.exec(
            "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('org_1', 'Acme', 'tenant-a', 'cus_A1');
             INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
             VALUES ('s_1', 'org_1', 'sub_A1', 'plan_starter_m', 'trialing', '2030-01-15 00:00:00');",
        )
        .await;
    }

    pub fn provision_request(&self, body: &Value, request_id: &str) -> reqwest::RequestBuilder {
        provision_request_to(&self.client, &self.address, body, request_id)
    }

    pub async fn provision(&self, body: &Value, request_id: &str) -> (u16, Value) {
        let response = self
            .provision_request(body, request_id)
            .send()
            .await
            .expect("the service answers");
        read(response).await
    }

    /// How many POSTs the emulator received on `path`.
    pub fn stigg_posts(&self, path: &str) -> usize {
        self.stigg
            .emulator()
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == path)
            .count()
    }
}

pub fn provision_request_to(
    client: &reqwest::Client,
    address: &str,
    body: &Value,
    request_id: &str,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{address}/api/stigg/provision"))
        .header("x-request-id", request_id)
        .header("x-correlation-id", format!("corr-{request_id}"))
        .json(body)
}

pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("the answer's body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, body)
}

pub fn acme_body() -> Value {
    json!({
        "orgId": "org_1",
        "stripeCustomerId": "cus_A1",
        "stripeSubscriptionId": "sub_A1",
        "planCode": "plan_starter_m"
    })
}

/// The seeded request with one field changed.
pub fn acme_with(field: &str, value: &str) -> Value {
    let mut body = acme_body();
    body[field] = Value::from(value);
    body
}

/// The `field` names of an error body's details, in order.
pub fn detail_fields(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .map(|details| {
            details
                .iter()
                .filter_map(|d| d["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
