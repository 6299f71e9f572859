//! The lifecycle sync in the real binary: a kill -9 between Stripe's 200 and Stigg's answer,
//! a stop while events are pending, and the Stripe key and webhook secret kept out of every
//! log line and row. Stripe is the emulator, served in this test process beside Stigg's; the
//! database a SQLite file or a PostgreSQL database.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use onboarding_adapters_db::Backend;
use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_adapters_stripe::{WebhookSecrets, sign};
use serde_json::{Value, json};
use stigg_emulator::{EntityKind, Fault, FaultAction, Scoped as _};
use stripe_emulator::{
    ApiFault, EmulatorConfig as StripeConfig, NewCustomer, NewSubscription, PriceSpec,
    RunningEmulator as StripeEmulator, SubscriptionChange, SubscriptionStatus, TrialEnd,
    WebhookEndpoint,
};

use crate::{Sandbox, signal, wait_exit};

/// Both contain [`MARKER`], which must be found nowhere.
const STRIPE_KEY: &str = "rk_test_procSECRETkey4d2e9";
const WEBHOOK_SECRET: &str = "whsec_procSECRETsig7a1c";
const MARKER: &str = "procSECRET";
/// 2030-01-15, the seeded trial end.
const TRIAL_END: i64 = 1_894_665_600;

/// A sandbox with Stripe: organizations `org_{n}` billed as `cus_P{n}` with trialing
/// `sub_P{n}` on `plan_starter_m`, in the database and in Stripe (whose deliveries are off
/// until [`SyncSandbox::deliver_here`]).
struct SyncSandbox {
    sandbox: Sandbox,
    stripe: StripeEmulator,
    db: TestDatabase,
    /// Stripe's `customer.subscription.created` event of each subscription.
    created: Vec<Value>,
}

/// A running `serve`, its output read as it comes (a full pipe would stall its logging).
struct Running {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

impl SyncSandbox {
    async fn new(backend: Backend, subscriptions: usize) -> Self {
        let db = TestDatabase::new(backend).await;
        let sandbox = Sandbox::new().await;
        let stripe = StripeEmulator::start_on_loopback(StripeConfig {
            api_key: STRIPE_KEY.into(),
            ..StripeConfig::default()
        })
        .await
        .expect("the Stripe emulator starts");
        let mut created = Vec::new();
        for n in 1..=subscriptions {
            db.execute(&format!(
                "INSERT INTO organizations (id, name, tenant_id, stripe_customer_id) VALUES ('org_{n}', 'Org {n}', NULL, 'cus_P{n}');
                 INSERT INTO subscriptions (id, organization_id, stripe_subscription_id, plan_code, status, trial_ends_at)
                 VALUES ('s_{n}', 'org_{n}', 'sub_P{n}', 'plan_starter_m', 'trialing', '2030-01-15 00:00:00');"
            ))
            .await
            .expect("the seed runs");
            let emulator = stripe.emulator();
            emulator
                .create_customer(NewCustomer {
                    id: Some(format!("cus_P{n}")),
                    ..NewCustomer::default()
                })
                .expect("a Stripe customer");
            let mut subscription = NewSubscription::new(format!("cus_P{n}"), starter());
            subscription.id = Some(format!("sub_P{n}"));
            subscription.status = Some(SubscriptionStatus::Trialing);
            subscription.trial_end = Some(TRIAL_END);
            let change = emulator
                .create_subscription(subscription)
                .expect("a Stripe subscription");
            created.extend(
                change
                    .events
                    .into_iter()
                    .filter(|e| e["type"] == "customer.subscription.created"),
            );
        }
        Self {
            sandbox,
            stripe,
            db,
            created,
        }
    }

    fn serve(&self) -> Command {
        let mut command = self.sandbox.command(&["serve"]);
        command
            .env("DATABASE_URL", self.db.url())
            .env("STRIPE_API_URL", self.stripe.base_url())
            .env("STRIPE_API_KEY", STRIPE_KEY)
            .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET);
        command
    }

    async fn start(&self, mut command: Command) -> Running {
        let mut child = command.spawn().expect("the service starts");
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
        self.sandbox.wait_ready(&mut child).await;
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// Points Stripe's deliveries at the service.
    fn deliver_here(&self) {
        self.stripe.set_webhook(Some(
            WebhookEndpoint::new(&self.sandbox.url("/api/stripe/webhooks"), WEBHOOK_SECRET)
                .expect("a webhook endpoint"),
        ));
    }

    /// `body` POSTed to the webhook route, signed now with `secret`.
    fn delivery(&self, body: &str, secret: &str, at: i64) -> reqwest::RequestBuilder {
        let secrets = WebhookSecrets::parse(secret).expect("a secret");
        reqwest::Client::new()
            .post(self.sandbox.url("/api/stripe/webhooks"))
            .header("content-type", "application/json")
            .header("stripe-signature", sign(body.as_bytes(), &secrets, at))
            .body(body.to_owned())
    }

    async fn provision(&self, n: usize) {
        let response = reqwest::Client::new()
            .post(self.sandbox.url("/api/stigg/provision"))
            .header("x-request-id", format!("req-provision-{n}"))
            .header("x-correlation-id", format!("corr-provision-{n}"))
            .json(&json!({
                "orgId": format!("org_{n}"),
                "stripeCustomerId": format!("cus_P{n}"),
                "stripeSubscriptionId": format!("sub_P{n}"),
                "planCode": "plan_starter_m"
            }))
            .send()
            .await
            .expect("the service answers");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    async fn count(&self, sql: &str) -> i64 {
        self.db.count(sql).await.expect("the count runs")
    }

    async fn event_status(&self, id: &str) -> String {
        let counts = [
            "pending", "applied", "failed", "ignored", // every status
        ];
        for status in counts {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM stripe_events WHERE event_id = '{id}' AND status = '{status}'"
            );
            if self.count(&sql).await == 1 {
                return status.to_owned();
            }
        }
        "absent".to_owned()
    }

    /// Waits until `condition` (a count query) reaches `n`; panics after `within`.
    async fn wait_count(&self, sql: &str, n: i64, within: Duration) {
        let started = Instant::now();
        loop {
            let now = self.count(sql).await;
            if now == n {
                return;
            }
            assert!(
                started.elapsed() < within,
                "{sql}: {now}, not {n}, after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Running {
    /// Sends `name`, waits for the exit: its status and output.
    async fn stop(mut self, name: &str, within: Duration) -> (ExitStatus, String, String) {
        signal(&self.child, name);
        let status =
            tokio::task::spawn_blocking(move || (wait_exit(&mut self.child, within), self))
                .await
                .expect("the waiting task finishes");
        let (status, running) = status;
        let stdout = running.stdout.join().expect("stdout was read");
        let stderr = running.stderr.join().expect("stderr was read");
        (status, stdout, stderr)
    }
}

fn starter() -> PriceSpec {
    PriceSpec {
        id: "price_starter".into(),
        lookup_key: Some("plan_starter_m".into()),
        interval: Default::default(),
    }
}

/// The service dies (SIGKILL) after it recorded its intent and sent Stigg the plan change,
/// before Stigg answered. Restarted on the same database, it takes the subscription once the
/// dead holder's lease lapses (the sync's 30 s deadline + 5 s, not configurable), sends the
/// recorded move again under the same Idempotency-Key, and the event ends applied: one new
/// Stigg subscription, not two.
async fn a_kill_between_the_200_and_stiggs_answer_is_finished_once_after_a_restart(
    backend: Backend,
) {
    let s = SyncSandbox::new(backend, 1).await;
    let server = s.start(s.serve()).await;
    s.provision(1).await;
    s.deliver_here();
    let stigg = s.sandbox.stigg.emulator();
    let (requests_before, created_before) = (
        stigg.requests().len(),
        stigg.created_count(EntityKind::Subscription),
    );
    // Stigg takes its time over the plan change: long enough to kill the service meanwhile.
    stigg.push_fault(
        Fault::new(FaultAction::Delay { ms: 3000 })
            .on_method("POST")
            .on_path("/api/v1/subscriptions"),
    );
    let change = s
        .stripe
        .emulator()
        .change_subscription(
            "sub_P1",
            SubscriptionChange::Price {
                price: PriceSpec {
                    id: "price_pro".into(),
                    lookup_key: Some("plan_pro_m".into()),
                    interval: Default::default(),
                },
            },
        )
        .expect("the plan changes in Stripe");
    let event_id = change.events[0]["id"]
        .as_str()
        .expect("an event id")
        .to_owned();
    let creates = || {
        stigg.requests()[requests_before..]
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/api/v1/subscriptions")
            .cloned()
            .collect::<Vec<_>>()
    };
    let intent = "SELECT COUNT(*) AS n FROM stigg_sync_states WHERE stripe_subscription_id = 'sub_P1' AND intent IS NOT NULL";
    let started = Instant::now();
    while creates().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the plan change never reached Stigg"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        s.count(intent).await,
        1,
        "the intent is recorded before the call"
    );
    let (status, _, stderr) = server.stop("KILL", Duration::from_secs(10)).await;
    assert_eq!(status.signal(), Some(9), "{stderr}");
    // Answered 200, so Stripe will not deliver it again; left pending, never settled.
    assert_eq!(s.event_status(&event_id).await, "pending");
    stigg.clear_faults();

    let restarted_at = Instant::now();
    let server = s.start(s.serve()).await;
    let applied = format!(
        "SELECT COUNT(*) AS n FROM stripe_events WHERE event_id = '{event_id}' AND status = 'applied'"
    );
    s.wait_count(&applied, 1, Duration::from_secs(60)).await;
    eprintln!(
        "applied {:?} after the restart (the dead holder's lease had to lapse)",
        restarted_at.elapsed()
    );
    assert_eq!(s.count(intent).await, 0, "the intent is closed");
    let creates = creates();
    assert_eq!(creates.len(), 2, "sent, then sent again: {creates:?}");
    assert_eq!(creates[0].idempotency_key, creates[1].idempotency_key);
    assert!(creates[0].idempotency_key.is_some());
    eprintln!(
        "Stigg answered the first send {} (0: cut off), the second {}",
        creates[0].status, creates[1].status
    );
    // Created (201) by the send that reached Stigg, replayed under the same key.
    assert_eq!(creates[1].status, 201);
    assert_eq!(
        stigg.created_count(EntityKind::Subscription),
        created_before + 1,
        "the plan change was made once"
    );
    let live = stigg
        .active_subscription("org_1")
        .expect("org_1 has a live Stigg subscription");
    assert_eq!(live.plan_id, "plan-pro");
    let state = s
        .count(
            "SELECT COUNT(*) AS n FROM stigg_sync_states WHERE stripe_subscription_id = 'sub_P1' \
             AND plan_code = 'plan_pro_m' AND status = 'active'",
        )
        .await;
    assert_eq!(state, 1, "the applied state is recorded");
    let (status, _, stderr) = server.stop("TERM", Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("finishing a move sent before"), "{stderr}");
}

/// SIGTERM while Stripe answers slowly and events wait: exit 0, and after a restart every
/// event ends applied. Twelve subscriptions, more than the worker takes at once, so some are
/// still pending at the stop.
async fn sigterm_with_events_pending_exits_0_and_a_restart_applies_them_all(backend: Backend) {
    // More subscriptions than the worker keeps in hand (32): those in hand are finished on
    // the stop, the others must still be pending.
    const N: usize = 40;
    let s = SyncSandbox::new(backend, N).await;
    s.stripe.emulator().push_api_fault(
        ApiFault::delay(2000)
            .on_path("/v1/subscriptions")
            .times(100),
    );
    let server = s.start(s.serve()).await;
    let now = chrono::Utc::now().timestamp();
    let sends = s.created.iter().map(|event| {
        let request = s.delivery(&event.to_string(), WEBHOOK_SECRET, now);
        async move { request.send().await.expect("the service answers").status() }
    });
    let statuses = futures::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM stripe_events").await,
        N as i64
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    let (status, _, stderr) = server.stop("TERM", Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    let pending = "SELECT COUNT(*) AS n FROM stripe_events WHERE status = 'pending'";
    let left = s.count(pending).await;
    eprintln!(
        "stopped in {:?}; {left} of {N} events left pending",
        stopping.elapsed()
    );
    assert!(
        left > 0,
        "nothing was pending at the stop: the test proved nothing"
    );
    assert_eq!(
        s.count(
            "SELECT COUNT(*) AS n FROM stripe_events WHERE status NOT IN ('pending', 'applied')"
        )
        .await,
        0
    );
    assert!(stderr.contains("Stripe sync worker stopped"), "{stderr}");

    s.stripe.emulator().clear_faults();
    let server = s.start(s.serve()).await;
    s.wait_count(pending, 0, Duration::from_secs(30)).await;
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM stripe_events WHERE status = 'applied'")
            .await,
        N as i64
    );
    let stigg = s.sandbox.stigg.emulator();
    assert_eq!(stigg.created_count(EntityKind::Subscription), N);
    for n in 1..=N {
        let subscription = stigg
            .subscription(&format!("sub_P{n}"))
            .unwrap_or_else(|| panic!("sub_P{n} is not in Stigg"));
        assert_eq!(subscription.plan_id, "plan-starter");
    }
    let (status, _, stderr) = server.stop("TERM", Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// The Stripe key and the webhook secret, with valid and invalid deliveries, a Stripe
/// refusal and a sync: in no log line, no answer, no row.
async fn the_stripe_key_and_webhook_secret_reach_no_log_and_no_row(backend: Backend) {
    let s = SyncSandbox::new(backend, 1).await;
    let mut command = s.serve();
    command.env("RUST_LOG", "debug");
    let server = s.start(command).await;
    s.provision(1).await;
    s.deliver_here();
    let stripe = s.stripe.emulator();
    let mut answers = String::new();

    // Invalid deliveries: another secret, a stale signature, a tampered body, none at all.
    let now = chrono::Utc::now().timestamp();
    let body = json!({
        "id": "evt_forged1", "object": "event", "type": "customer.subscription.updated",
        "data": {"object": {"id": "sub_P1", "object": "subscription"}}
    })
    .to_string();
    let tampered = s
        .delivery(&body, WEBHOOK_SECRET, now)
        .body(body.replace("sub_P1", "sub_P2"));
    for request in [
        s.delivery(&body, "whsec_someoneelse", now),
        s.delivery(&body, WEBHOOK_SECRET, now - 3600),
        tampered,
        reqwest::Client::new()
            .post(s.sandbox.url("/api/stripe/webhooks"))
            .body(body.clone()),
    ] {
        let response = request.send().await.expect("the service answers");
        assert_eq!(response.status(), 400);
        answers.push_str(&format!("{:?}", response.headers()));
        answers.push_str(&response.text().await.unwrap_or_default());
    }

    // A Stripe refusal (401: the key) fails the first event; the next one syncs.
    stripe.push_api_fault(ApiFault::status(401).on_path("/v1/subscriptions/sub_P1"));
    let refused = stripe
        .change_subscription(
            "sub_P1",
            SubscriptionChange::TrialEnd {
                trial_end: TrialEnd::At(TRIAL_END + 86_400),
            },
        )
        .expect("the trial moves in Stripe");
    let refused_id = refused.events[0]["id"].as_str().expect("an id").to_owned();
    let failed = format!(
        "SELECT COUNT(*) AS n FROM stripe_events WHERE event_id = '{refused_id}' AND status = 'failed'"
    );
    s.wait_count(&failed, 1, Duration::from_secs(10)).await;
    let canceled = stripe
        .change_subscription("sub_P1", SubscriptionChange::Cancel)
        .expect("the subscription is canceled in Stripe");
    let canceled_id = canceled.events[0]["id"].as_str().expect("an id").to_owned();
    let applied = format!(
        "SELECT COUNT(*) AS n FROM stripe_events WHERE event_id = '{canceled_id}' AND status = 'applied'"
    );
    s.wait_count(&applied, 1, Duration::from_secs(10)).await;
    for path in [
        format!("/api/stripe/events/{refused_id}"),
        format!("/api/stripe/events/{canceled_id}"),
        "/api/stigg/subscriptions/sub_P1".to_owned(),
    ] {
        let response = reqwest::Client::new()
            .get(s.sandbox.url(&path))
            .send()
            .await
            .expect("the service answers");
        answers.push_str(&response.text().await.unwrap_or_default());
    }
    assert!(answers.contains("Stripe rejected the API key"), "{answers}");
    let (status, stdout, stderr) = server.stop("TERM", Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{stderr}");

    let rows = format!(
        "{:?}",
        s.db.database()
            .recent_debug_logs(1000)
            .await
            .expect("the debug log can be read")
    );
    let everything = format!("{answers}\n{stdout}\n{stderr}\n{rows}");
    for secret in [STRIPE_KEY, WEBHOOK_SECRET, MARKER] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
    // The tables the sync writes, every text column.
    let like = format!("'%{MARKER}%'");
    for (table, columns) in [
        (
            "stripe_events",
            "event_id, event_type, object_id, payload, status, error, moves",
        ),
        (
            "stigg_sync_states",
            "stripe_subscription_id, organization_id, stigg_customer_id, stigg_subscription_id, \
             plan_code, status, intent, last_event_id, last_error",
        ),
        ("leases", "lease_key, holder"),
        (
            "debug_logs",
            "request_id, correlation_id, tenant_id, method, path, request_body, error_code",
        ),
    ] {
        let matches = columns
            .split(", ")
            .map(|c| format!("COALESCE(CAST({c} AS TEXT), '') LIKE {like}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {matches}");
        assert_eq!(s.count(&sql).await, 0, "{table} holds a secret");
    }
    // The checks looked at real output: the refusals, the failure, the sync, the rows.
    for line in [
        "webhook signature refused",
        "Stripe events failed",
        "Stripe events applied",
    ] {
        assert!(stderr.contains(line), "no '{line}' in the log");
    }
    assert!(
        s.count("SELECT COUNT(*) AS n FROM debug_logs WHERE path = '/api/stripe/webhooks'")
            .await
            >= 6
    );
    assert!(
        s.count("SELECT COUNT(*) AS n FROM stripe_events WHERE error LIKE '%Stripe rejected%'")
            .await
            == 1
    );
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM stigg_sync_states WHERE status = 'canceled'")
            .await,
        1
    );
}

/// Each test on a SQLite file and on a PostgreSQL database.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                // Multi-threaded: blocking on a child process must not stall the emulators.
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(onboarding_adapters_db::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(onboarding_adapters_db::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_kill_between_the_200_and_stiggs_answer_is_finished_once_after_a_restart,
    sigterm_with_events_pending_exits_0_and_a_restart_applies_them_all,
    the_stripe_key_and_webhook_secret_reach_no_log_and_no_row,
);
