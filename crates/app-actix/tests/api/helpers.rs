//! A real server on port 0, a fresh SQLite file, and the Stigg emulator, driven over HTTP.
//! Tables are seeded with the contract's plain SQL, as outside tools do.

use std::path::PathBuf;

use clap::Parser;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use onboarding_app::cli::Cli;
use onboarding_app::startup::Application;
use serde_json::{Value, json};
use stigg_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use tempfile::TempDir;

pub const STIGG_KEY: &str = "server-test-key-7f3a";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub stigg: RunningEmulator,
    pub db_path: PathBuf,
    _dir: TempDir,
}

pub struct Options {
    pub api_token: Option<&'static str>,
    /// The key the service sends; the emulator always expects [`STIGG_KEY`].
    pub service_stigg_key: &'static str,
    pub extra_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            api_token: None,
            service_stigg_key: STIGG_KEY,
            extra_args: Vec::new(),
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    onboarding_app::telemetry::init();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let db_path = dir.path().join("onboarding.db");
    let stigg = RunningEmulator::start(
        Emulator::new(EmulatorConfig {
            api_key: STIGG_KEY.into(),
            ..EmulatorConfig::default()
        }),
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("emulator: {e:#}"));

    let mut args = vec![
        "onboarding".to_owned(),
        format!("--database-url=sqlite://{}", db_path.display()),
        "--bind-addr=127.0.0.1:0".to_owned(),
        format!("--stigg-api-url={}", stigg.base_url()),
        format!("--stigg-api-key={}", options.service_stigg_key),
        // Short waits keep failure tests fast; the policy is the same.
        "--stigg-attempt-timeout-ms=2000".to_owned(),
        "--provisioning-deadline-ms=8000".to_owned(),
    ];
    if let Some(token) = options.api_token {
        args.push(format!("--api-token={token}"));
    }
    args.extend(options.extra_args);
    let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{e}"));
    let app = Application::build(&cli.settings)
        .await
        .unwrap_or_else(|e| panic!("app: {e:#}"));
    let address = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped());

    TestApp {
        address,
        client: reqwest::Client::new(),
        stigg,
        db_path,
        _dir: dir,
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName, Debug)]
pub struct DebugRow {
    #[diesel(sql_type = Nullable<Text>)]
    pub request_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub correlation_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub tenant_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub method: String,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub request_body: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub status: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub error_code: Option<String>,
}

impl TestApp {
    fn sql(&self) -> SqliteConnection {
        SqliteConnection::establish(&self.db_path.display().to_string())
            .unwrap_or_else(|e| panic!("sqlite: {e}"))
    }

    /// Runs plain SQL against the service's database, as an outside tool would.
    pub fn exec(&self, sql: &str) {
        let mut conn = self.sql();
        conn.batch_execute(&format!("PRAGMA busy_timeout = 5000; {sql}"))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn count(&self, sql: &str) -> i64 {
        let mut conn = self.sql();
        conn.batch_execute("PRAGMA busy_timeout = 5000;")
            .unwrap_or_else(|e| panic!("{e}"));
        diesel::sql_query(sql)
            .get_result::<Count>(&mut conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .n
    }

    pub fn debug_rows(&self, request_id: &str) -> Vec<DebugRow> {
        let mut conn = self.sql();
        diesel::sql_query(
            "SELECT request_id, correlation_id, tenant_id, method, path, request_body, status, error_code \
             FROM debug_logs WHERE request_id = ? ORDER BY id",
        )
        .bind::<Text, _>(request_id)
        .load(&mut conn)
        .unwrap_or_else(|e| panic!("debug_logs: {e}"))
    }

    /// The contract's seed: organization `org_1` (`cus_A1`) with trialing `sub_A1`.
    pub fn seed_acme(&self) {
        self.exec(
            "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('org_1', 'Acme', 'tenant-a', 'cus_A1');
             INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
             VALUES ('s_1', 'org_1', 'sub_A1', 'plan_starter_m', 'trialing', '2030-01-15 00:00:00');",
        );
    }

    pub fn provision_request(&self, body: &Value, request_id: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/api/stigg/provision", self.address))
            .header("x-request-id", request_id)
            .header("x-correlation-id", format!("corr-{request_id}"))
            .json(body)
    }

    pub async fn provision(&self, body: &Value, request_id: &str) -> (u16, Value) {
        let response = self
            .provision_request(body, request_id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request: {e}"));
        read(response).await
    }
}

pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("body: {e}"));
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
