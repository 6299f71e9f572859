//! The `onboarding` binary as a process: signals, exit codes, what reaches standard output and
//! error. Stigg is the emulator, started in this test process; the database a SQLite file.

// clippy.toml's allow-*-in-tests reaches only #[test] functions, not this crate's helpers;
// in a test, a set-up step that fails should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use onboarding_adapters_db::{Database, DbConfig};
use onboarding_domain::model::{OrgId, ProvisioningState, StripeSubscriptionId};
use onboarding_domain::ports::{ProvisioningBacklog, ProvisioningStore};
use secrecy::SecretString;
use serde_json::{Value, json};
use stigg_emulator::{EmulatorConfig, Fault, FaultAction, RunningEmulator, Scoped};
use tempfile::TempDir;

mod shared_budget;
mod stripe_sync;
mod sync_command;

const BIN: &str = env!("CARGO_BIN_EXE_onboarding");
const STIGG_KEY: &str = "server-emulator-key-91c2";

struct Sandbox {
    dir: TempDir,
    stigg: RunningEmulator,
    port: u16,
}

impl Sandbox {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let stigg = RunningEmulator::start_on_loopback(EmulatorConfig {
            api_key: STIGG_KEY.into(),
            ..EmulatorConfig::default()
        })
        .await
        .expect("the Stigg emulator starts");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        Self { dir, stigg, port }
    }

    fn db_path(&self) -> PathBuf {
        self.dir.path().join("onboarding.db")
    }

    /// The binary with a clean environment (no developer `.env`, no inherited settings)
    /// pointed at this sandbox.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", self.db_path().display()),
            )
            .env("BIND_ADDR", format!("127.0.0.1:{}", self.port))
            .env("STIGG_API_URL", self.stigg.base_url())
            .env("STIGG_API_KEY", STIGG_KEY)
            .env("LOG_FORMAT", "json")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// The binary started under a descriptor limit of `nofile` (soft and hard), through the
    /// shell's `ulimit`; the command's environment is kept.
    fn spawn_with_nofile(&self, nofile: u32) -> Child {
        let command = self.command(&[]);
        let program = command.get_program().to_owned();
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" serve"))
            .arg(program)
            .env_clear()
            .envs(
                command
                    .get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        shell.spawn().expect("sh starts")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .expect("the onboarding binary runs")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_ready(&self, server: &mut Child) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = client.get(self.url("/readyz")).send().await
                && response.status() == 200
            {
                return;
            }
            if let Ok(Some(status)) = server.try_wait() {
                panic!("the server exited before it was ready: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "the server was not ready within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn debug_bodies(&self) -> String {
        let db = onboarding_adapters_db::connect(&DbConfig::new(SecretString::from(format!(
            "sqlite://{}",
            self.db_path().display()
        ))))
        .await
        .expect("the sandbox's SQLite database opens");
        rows_text(&db).await
    }
}

async fn rows_text(db: &Database) -> String {
    format!(
        "{:?}",
        db.recent_debug_logs(1000)
            .await
            .expect("the debug log can be read")
    )
}

fn demo_body() -> Value {
    json!({
        "orgId": "org_demo",
        "stripeCustomerId": "cus_Demo1",
        "stripeSubscriptionId": "sub_Demo1",
        "planCode": "plan_starter_m"
    })
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} failed");
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the process did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn seed(sandbox: &Sandbox) {
    let output = sandbox.run(&["seed-demo"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

// Multi-threaded: blocking on a child process must not stall the emulator served here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_stigg_call_lets_the_request_finish_and_exits_0() {
    a_stop_signal_lets_the_request_finish("TERM", 1500).await;
}

/// Ctrl-C drains like SIGTERM (actix's own handling made it a forced stop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_like_sigterm() {
    a_stop_signal_lets_the_request_finish("INT", 1500).await;
}

/// The drain outlasts the longest request: one that runs longer than the old fixed 10 s
/// drain, within the provisioning deadline, still gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_longer_than_ten_seconds_is_drained_too() {
    a_stop_signal_lets_the_request_finish("TERM", 11_000).await;
}

async fn a_stop_signal_lets_the_request_finish(name: &str, stigg_delay_ms: u64) {
    let sandbox = Sandbox::new().await;
    seed(&sandbox);
    sandbox.stigg.emulator().push_fault(
        Fault::new(FaultAction::Delay { ms: stigg_delay_ms }).on_path("/api/v1/customers"),
    );
    let mut server = sandbox
        .command(&["serve"])
        // One slow attempt, not a retry after a timeout.
        .env("STIGG_ATTEMPT_TIMEOUT_MS", "14000")
        .spawn()
        .expect("the service starts");
    sandbox.wait_ready(&mut server).await;

    let client = reqwest::Client::new();
    let in_flight = tokio::spawn(
        client
            .post(sandbox.url("/api/stigg/provision"))
            .header("x-request-id", "req-slow")
            .header("x-correlation-id", "corr-slow")
            .json(&demo_body())
            .send(),
    );
    // Let the request reach the slow Stigg call, then ask the server to stop.
    tokio::time::sleep(Duration::from_millis(400)).await;
    signal(&server, name);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = reqwest::Client::new()
        .get(sandbox.url("/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a new connection was accepted after SIGTERM"
    );

    let response = in_flight
        .await
        .expect("the request task finishes")
        .expect("the in-flight request is answered, not cut");
    assert_eq!(response.status(), 200);
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut server, Duration::from_secs(15)))
            .await
            .expect("the waiting task finishes");
    assert_eq!(status.code(), Some(0));
    // The answered request's debug-log row is there.
    assert!(sandbox.debug_bodies().await.contains("req-slow"));
}

/// A second signal stops at once; the request it cut off still has its debug-log row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once_and_the_cut_request_keeps_its_row() {
    let sandbox = Sandbox::new().await;
    seed(&sandbox);
    sandbox
        .stigg
        .emulator()
        .push_fault(Fault::new(FaultAction::Delay { ms: 4000 }).on_path("/api/v1/customers"));
    let mut server = sandbox
        .command(&["serve"])
        .spawn()
        .expect("the service starts");
    sandbox.wait_ready(&mut server).await;
    let in_flight = tokio::spawn(
        reqwest::Client::new()
            .post(sandbox.url("/api/stigg/provision"))
            .header("x-request-id", "req-cut")
            .header("x-correlation-id", "corr-cut")
            .json(&demo_body())
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    signal(&server, "TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&server, "INT");
    let started = Instant::now();
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut server, Duration::from_secs(10)))
            .await
            .expect("the waiting task finishes");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(0));
    assert!(in_flight.await.expect("the request task finishes").is_err());
    let rows = sandbox.debug_bodies().await;
    assert!(
        rows.contains("req-cut") && rows.contains("CUT_OFF"),
        "{rows}"
    );
}

// Multi-threaded: blocking on a child process must not stall the emulator served here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_answers_or_debug_rows() {
    const BAD_STIGG_KEY: &str = "server-SECRET-stigg-5e1f";
    const TOKEN: &str = "tok-SECRET-api-77aa";
    const BODY_SECRET: &str = "body-SECRET-pw-0b9d";
    const URL_SECRET: &str = "url-SECRET-pw-4c1a";
    let sandbox = Sandbox::new().await;
    seed(&sandbox);
    // Credentials in the Stigg URL are shown nowhere either.
    let stigg_url = sandbox.stigg.base_url().replacen(
        "http://",
        &format!("http://stigg-user:{URL_SECRET}@"),
        1,
    );
    let mut server = sandbox
        .command(&["serve"])
        .env("STIGG_API_URL", &stigg_url)
        // A key Stigg refuses, so the failure path runs too.
        .env("STIGG_API_KEY", BAD_STIGG_KEY)
        .env("API_TOKEN", TOKEN)
        .env("RUST_LOG", "debug")
        .spawn()
        .expect("the service starts");
    sandbox.wait_ready(&mut server).await;

    let client = reqwest::Client::new();
    let mut answers = String::new();
    let mut body = demo_body();
    body["password"] = Value::from(BODY_SECRET);
    for token in [None, Some("wrong-token"), Some(TOKEN)] {
        let mut request = client
            .post(sandbox.url("/api/stigg/provision"))
            .header("x-request-id", "req-secret")
            .header("x-correlation-id", "corr-secret")
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the service answers");
        answers.push_str(&format!("{:?}", response.headers()));
        answers.push_str(&response.text().await.unwrap_or_default());
    }
    assert!(answers.contains("Stigg rejected the API key"), "{answers}");
    signal(&server, "TERM");
    let output = tokio::task::spawn_blocking(move || server.wait_with_output())
        .await
        .expect("the waiting task finishes")
        .expect("the service's output can be read");
    let help = sandbox.run(&["--help"]);

    let everything = format!(
        "{answers}\n{}\n{}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&help.stdout),
        sandbox.debug_bodies().await,
    );
    for secret in [BAD_STIGG_KEY, TOKEN, BODY_SECRET, URL_SECRET] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
    // The Stigg URL was logged, without its credentials.
    assert!(everything.contains("Stigg client ready"), "no Stigg line");
    // The logs did record the requests (the check above looked at real output).
    assert!(String::from_utf8_lossy(&output.stderr).contains("corr-secret"));
}

// Multi-threaded: blocking on a child process must not stall the emulator served here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_to_start_without_a_stigg_key_or_an_api_token() {
    let sandbox = Sandbox::new().await;
    let no_key = sandbox
        .command(&["serve"])
        .env("APP_ENV", "production")
        .env("API_TOKEN", "a-token")
        .env_remove("STIGG_API_KEY")
        .env_remove("STIGG_API_URL")
        .output()
        .expect("the onboarding binary runs");
    let no_token = sandbox
        .command(&["serve"])
        .env("APP_ENV", "production")
        .output()
        .expect("the onboarding binary runs");

    let neither = sandbox
        .command(&["serve"])
        .env("APP_ENV", "production")
        .env_remove("STIGG_API_KEY")
        .env_remove("STIGG_API_URL")
        .output()
        .expect("the onboarding binary runs");
    // Every problem in one run, one line each.
    assert_eq!(neither.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&neither.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("onboarding: "))
        .collect();
    assert_eq!(
        lines,
        [
            "onboarding: API_TOKEN is required when APP_ENV=production",
            "onboarding: STIGG_API_KEY is required when APP_ENV=production",
        ],
        "{stderr}"
    );

    for (output, variable) in [(no_key, "STIGG_API_KEY"), (no_token, "API_TOKEN")] {
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr
            .lines()
            .find(|l| l.starts_with("onboarding: "))
            .unwrap_or_else(|| panic!("no error line in {stderr}"));
        assert_eq!(
            line,
            format!("onboarding: {variable} is required when APP_ENV=production")
        );
    }
}

// Multi-threaded: blocking on a child process must not stall the emulator served here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_setting_stops_start_up_with_one_line_naming_it() {
    let sandbox = Sandbox::new().await;
    let output = sandbox
        .command(&["serve"])
        .env("BIND_ADDR", "not-an-address")
        .output()
        .expect("the onboarding binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("BIND_ADDR"), "{stderr}");

    // Named by the variable, not the flag, with the values allowed when there is a list.
    for (variable, value, expected) in [
        (
            "APP_ENV",
            "prod",
            "onboarding: APP_ENV: invalid value 'prod' (allowed: development, test, production)",
        ),
        (
            "LOG_FORMAT",
            "xml",
            "onboarding: LOG_FORMAT: invalid value 'xml' (allowed: json, text)",
        ),
        (
            "RUST_LOG",
            "info,=[x",
            "onboarding: RUST_LOG: invalid value 'info,=[x'",
        ),
    ] {
        let output = sandbox
            .command(&["migrate"])
            .env(variable, value)
            .output()
            .expect("the onboarding binary runs");
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with(expected), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

// Multi-threaded: blocking on a child process must not stall the emulator served here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_command_prints_the_result_and_fails_with_the_error_code() {
    let sandbox = Sandbox::new().await;
    seed(&sandbox);
    let args = |org: &'static str| {
        [
            "provision",
            "--org-id",
            org,
            "--stripe-customer-id",
            "cus_Demo1",
            "--stripe-subscription-id",
            "sub_Demo1",
            "--plan-code",
            "plan_starter_m",
        ]
    };

    let ok = sandbox.run(&args("org_demo"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let result: Value = serde_json::from_slice(&ok.stdout).expect("stdout is JSON");
    assert_eq!(result["provisioned"], true);
    assert_eq!(result["stiggSubscriptionId"], "sub_Demo1");

    let missing = sandbox.run(&args("org_nobody"));
    assert_eq!(missing.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&missing.stdout).expect("stdout is JSON");
    assert_eq!(error["code"], "NOT_FOUND");
    // The HTTP API's shape: trace ids, and `details` only when there are some.
    assert!(error.get("details").is_none(), "{error}");
    assert!(error["correlationId"].as_str().is_some(), "{error}");
    assert!(error.get("requestId").is_some(), "{error}");
}

/// Against a throwaway in-memory Stigg, a one-shot command would record provisioning that
/// never happened in the real database.
// Multi-threaded: blocking on a child process must not stall the emulator served here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_commands_refuse_to_run_without_stigg_settings_and_write_nothing() {
    let sandbox = Sandbox::new().await;
    seed(&sandbox);
    let provision = [
        "provision",
        "--org-id",
        "org_demo",
        "--stripe-customer-id",
        "cus_Demo1",
        "--stripe-subscription-id",
        "sub_Demo1",
        "--plan-code",
        "plan_starter_m",
    ];
    let without_stigg = |args: &[&str]| {
        sandbox
            .command(args)
            .env_remove("STIGG_API_KEY")
            .env_remove("STIGG_API_URL")
            .output()
            .expect("the onboarding binary runs")
    };
    for (args, command) in [
        (&provision[..], "provision"),
        (&["reconcile", "--limit", "5"][..], "reconcile"),
    ] {
        let output = without_stigg(args);
        assert_eq!(output.status.code(), Some(1), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("onboarding: STIGG_API_KEY is not set: `")
                    && l.contains(command)),
            "{stderr}"
        );
    }
    let db = onboarding_adapters_db::connect(&DbConfig::new(SecretString::from(format!(
        "sqlite://{}",
        sandbox.db_path().display()
    ))))
    .await
    .expect("the sandbox's SQLite database opens");
    let recorded = db
        .load(
            &OrgId::parse("org_demo").expect("a valid organization id"),
            &StripeSubscriptionId::parse("sub_Demo1").expect("a valid subscription id"),
        )
        .await
        .expect("the provisioning state can be read");
    assert_eq!(recorded, ProvisioningState::Pending { customer: None });
    assert_eq!(
        db.count_pending()
            .await
            .expect("the backlog can be counted"),
        1
    );

    // A dry run needs no Stigg; `--emulator` asks for the in-memory one by name.
    assert!(without_stigg(&["reconcile", "--dry-run"]).status.success());
    let mut with_emulator = provision.to_vec();
    with_emulator.push("--emulator");
    let output = without_stigg(&with_emulator);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Two instances on one PostgreSQL database serve a burst; the second is stopped with
/// SIGTERM right after it. Every answered request has exactly one debug-log row: none lost
/// to the stop, none written twice by a retry.
// Multi-threaded: blocking on a child process must not stall the emulator served here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_and_a_sigterm_leave_exactly_one_row_per_request() {
    let db = onboarding_adapters_db::test_support::TestDatabase::postgres().await;
    db.execute(
        "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('org_demo', 'Demo', NULL, 'cus_Demo1');
         INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
         VALUES ('s_demo', 'org_demo', 'sub_Demo1', 'plan_starter_m', 'trialing', NULL);",
    )
    .await
    .expect("the test's SQL runs");
    let (first, second) = (Sandbox::new().await, Sandbox::new().await);
    let start = |sandbox: &Sandbox| {
        sandbox
            .command(&["serve"])
            .env("DATABASE_URL", db.url())
            .spawn()
            .expect("the service starts")
    };
    let (mut one, mut two) = (start(&first), start(&second));
    first.wait_ready(&mut one).await;
    second.wait_ready(&mut two).await;

    let client = reqwest::Client::new();
    let send = |sandbox: &Sandbox, i: usize| {
        // Mostly refusals, and the same subscription provisioned from both sides.
        let body = if i.is_multiple_of(10) {
            demo_body()
        } else {
            json!({ "orgId": "?" })
        };
        client
            .post(sandbox.url("/api/stigg/provision"))
            .header("x-request-id", format!("req-burst-{i}"))
            .header("x-correlation-id", "corr-burst")
            .json(&body)
            .send()
    };
    let burst = (0..200_usize).map(|i| send(if i.is_multiple_of(2) { &first } else { &second }, i));
    let answers = futures::future::join_all(burst).await;
    signal(&two, "TERM");
    signal(&one, "TERM");
    for mut server in [one, two] {
        let status =
            tokio::task::spawn_blocking(move || wait_exit(&mut server, Duration::from_secs(30)))
                .await
                .expect("the waiting task finishes");
        assert_eq!(status.code(), Some(0));
    }

    let answered: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter_map(|(i, answer)| answer.as_ref().ok().map(|_| i))
        .collect();
    assert_eq!(
        answered.len(),
        200,
        "every request of the burst was answered"
    );
    for i in answered {
        let rows = db
            .database()
            .debug_logs_for_request(&format!("req-burst-{i}"))
            .await
            .expect("the debug log can be read");
        assert_eq!(rows.len(), 1, "req-burst-{i}: {rows:?}");
    }
}

/// One client holding more slow connections than the process has file descriptors cannot
/// take the last of them: connections are capped below the limit (the rest wait in the
/// listen backlog), slow bodies are cut off after 10 s, and another client is served once the
/// connections ahead of it in the backlog have had their turn. Before, the process ran out
/// of descriptors and nobody else was ever served.
// Multi-threaded: blocking on a child process must not stall the emulator served here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_connections_beyond_the_descriptor_limit_do_not_starve_others() {
    use tokio::io::AsyncWriteExt;

    let sandbox = Sandbox::new().await;
    let mut server = sandbox.spawn_with_nofile(512);
    sandbox.wait_ready(&mut server).await;

    // 600 connections (more than 512 descriptors) that send their headers, then nothing.
    let address = format!("127.0.0.1:{}", sandbox.port);
    let mut held = Vec::new();
    for i in 0..600 {
        let Ok(Ok(mut stream)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(&address),
        )
        .await
        else {
            continue;
        };
        let head = format!(
            "POST /api/stigg/provision HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 1000\r\nx-request-id: slow-{i}\r\nx-correlation-id: c\r\n\r\n{{"
        );
        let _ = stream.write_all(head.as_bytes()).await;
        held.push(stream);
    }
    let started = Instant::now();
    let healthz = reqwest::Client::new()
        .get(sandbox.url("/healthz"))
        .timeout(Duration::from_secs(40))
        .send()
        .await;
    assert!(
        healthz.as_ref().is_ok_and(|r| r.status() == 200),
        "another client was not served: {healthz:?}"
    );
    // Two rounds of cut-offs at most: 256 connections at a time, 10 s each.
    assert!(
        started.elapsed() < Duration::from_secs(35),
        "{:?}",
        started.elapsed()
    );
    drop(held);
    signal(&server, "TERM");
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut server, Duration::from_secs(30)))
            .await
            .expect("the waiting task finishes");
    assert_eq!(status.code(), Some(0));
}

/// One log line per event, and JSON values of their own type: a first `migrate` says what it
/// applied (not also "up to date"), a second one that nothing was pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_says_one_thing_per_run() {
    let sandbox = Sandbox::new().await;
    let lines = |output: &Output| -> Vec<Value> {
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .filter(|line: &Value| line["target"] == "onboarding_adapters_db::migrate")
            .collect()
    };
    let first = sandbox.run(&["migrate"]);
    assert!(first.status.success());
    let first = lines(&first);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["message"], "applied database migrations");
    assert!(
        first[0]["migrations"]
            .as_str()
            .is_some_and(|m| !m.contains('['))
    );
    let second = lines(&sandbox.run(&["migrate"]));
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0]["message"], "database schema is up to date");
}

/// `--help` reads well: a command's own options first, each with a line; the shared settings
/// under their heading with their defaults; `serve`'s settings only where they apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_shows_each_commands_options_first_and_only_its_settings() {
    let sandbox = Sandbox::new().await;
    let help = |args: &[&str]| String::from_utf8_lossy(&sandbox.run(args).stdout).into_owned();

    let provision = help(&["provision", "--help"]);
    let own = provision.find("--org-id").unwrap_or(usize::MAX);
    let shared = provision.find("Settings (").unwrap_or(0);
    assert!(own < shared, "{provision}");
    assert!(
        provision.contains("it becomes the Stigg customer id"),
        "{provision}"
    );
    for setting in [
        "DATABASE_MAX_CONNECTIONS",
        "RUST_LOG",
        "LOG_FORMAT",
        "[default: 8 on SQLite",
    ] {
        assert!(
            provision.contains(setting),
            "{setting} missing:\n{provision}"
        );
    }
    for server_only in ["BIND_ADDR", "API_TOKEN", "HTTP_WORKERS"] {
        assert!(
            !provision.contains(server_only),
            "{server_only} offered on provision"
        );
        assert!(!help(&["migrate", "--help"]).contains(server_only));
        assert!(
            help(&["--help"]).contains(server_only),
            "{server_only} not on serve"
        );
    }
    let completions = sandbox.run(&["completions", "bash"]);
    assert!(completions.status.success());
    assert!(String::from_utf8_lossy(&completions.stdout).contains("onboarding"));
    let version = String::from_utf8_lossy(&sandbox.run(&["--version"]).stdout).into_owned();
    assert!(version.starts_with("onboarding 0.1.0 ("), "{version}");
}
