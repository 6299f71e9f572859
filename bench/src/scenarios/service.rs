//! The processes a scenario drives, the Stigg and Stripe emulators and the service: how they
//! are started and waited for, their settings, and the requests sent to the service.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::Bench;
use crate::http;
use crate::procs::{self, Daemon, ProcStats};
use crate::wrk::{self, Body};

pub(super) const API_KEY: &str = "bench-stigg-key";
pub(super) const API_TOKEN: &str = "bench-api-token";
pub(super) const REQUEST_ID: &str = "bench-req";
pub(super) const CORRELATION_ID: &str = "bench-corr";
pub(super) const ROUTE: &str = "/api/stigg/provision";
/// The Stripe emulator's key and the webhook's signing secret (scenarios f and g).
pub(super) const STRIPE_API_KEY: &str = "sk_test_bench";
pub(super) const STRIPE_WEBHOOK_SECRET: &str = "whsec_bench_signing_secret";
pub(super) const STRIPE_WEBHOOK_ROUTE: &str = "/api/stripe/webhooks";
/// The client-side Stigg budget while the emulator has no rate limit (scenarios a–d).
pub(super) const UNLIMITED_CALLS_PER_MINUTE: u32 = 60_000_000;

pub(super) struct Emulator {
    pub(super) daemon: Daemon,
    pub(super) addr: SocketAddr,
}

/// The Stripe emulator (`stripe-emulator`), which delivers its events to the service.
pub(super) struct StripeEmulator {
    pub(super) daemon: Daemon,
    pub(super) addr: SocketAddr,
}

pub(super) struct Service {
    pub(super) daemon: Daemon,
    pub(super) addr: SocketAddr,
}

impl StripeEmulator {
    /// The service's Stripe settings, pointing at this emulator.
    pub(super) fn service_env(&self) -> Vec<(String, String)> {
        vec![
            ("STRIPE_API_URL".to_owned(), format!("http://{}", self.addr)),
            ("STRIPE_API_KEY".to_owned(), STRIPE_API_KEY.to_owned()),
            (
                "STRIPE_WEBHOOK_SECRET".to_owned(),
                STRIPE_WEBHOOK_SECRET.to_owned(),
            ),
        ]
    }
}

impl Service {
    pub(super) fn stats(&self) -> anyhow::Result<ProcStats> {
        self.daemon.stats()
    }

    /// Answers so far on `route`, by status (the service's own counter).
    pub(super) fn statuses(&self, route: &str) -> anyhow::Result<Vec<(String, f64)>> {
        let metrics = http::get(self.addr, "/metrics", Duration::from_secs(10))?.text();
        Ok(http::counter_by(
            &metrics,
            "onboarding_http_requests_total",
            &[("route", route)],
            "status",
        ))
    }
}

impl Bench {
    pub(super) fn start_emulator(
        &self,
        name: &str,
        rate_limit: Option<u32>,
    ) -> anyhow::Result<Emulator> {
        let port = procs::free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut args = vec![
            "--bind".to_owned(),
            addr.to_string(),
            "--api-key".to_owned(),
            API_KEY.to_owned(),
        ];
        if let Some(limit) = rate_limit {
            args.push("--rate-limit-per-minute".to_owned());
            args.push(limit.to_string());
        }
        let daemon = Daemon::start(
            name,
            &self.config.bin_dir.join("stigg-emulator"),
            &args,
            &[("RUST_LOG".to_owned(), "warn".to_owned())],
            &self.work.join(format!("{name}.log")),
            &self.work,
        )?;
        wait_http(addr, "/_emulator/health", &daemon)?;
        Ok(Emulator { daemon, addr })
    }

    /// A Stripe emulator with the benchmark's key; no webhook endpoint until
    /// `PUT /_emulator/webhook`, so that the objects created first are not delivered.
    pub(super) fn start_stripe_emulator(&self, name: &str) -> anyhow::Result<StripeEmulator> {
        let addr = SocketAddr::from(([127, 0, 0, 1], procs::free_port()?));
        let daemon = Daemon::start(
            name,
            &self.config.bin_dir.join("stripe-emulator"),
            &[
                "--bind".to_owned(),
                addr.to_string(),
                "--api-key".to_owned(),
                STRIPE_API_KEY.to_owned(),
            ],
            &[("RUST_LOG".to_owned(), "warn".to_owned())],
            &self.work.join(format!("{name}.log")),
            &self.work,
        )?;
        wait_http(addr, "/_emulator/health", &daemon)?;
        Ok(StripeEmulator { daemon, addr })
    }

    pub(super) fn service_env(
        &self,
        database_url: &str,
        stigg: SocketAddr,
        calls_per_minute: u32,
        bind: Option<SocketAddr>,
    ) -> Vec<(String, String)> {
        let mut env = vec![
            ("DATABASE_URL", database_url.to_owned()),
            ("DATABASE_MAX_CONNECTIONS", self.config.db_pool.to_string()),
            ("STIGG_API_URL", format!("http://{stigg}")),
            ("STIGG_API_KEY", API_KEY.to_owned()),
            ("STIGG_CALLS_PER_MINUTE", calls_per_minute.to_string()),
            ("APP_ENV", "production".to_owned()),
            ("API_TOKEN", API_TOKEN.to_owned()),
            (
                "PLAN_CATALOG",
                self.config
                    .root
                    .join("config/plans.toml")
                    .display()
                    .to_string(),
            ),
        ];
        if let Some(bind) = bind {
            env.push(("BIND_ADDR", bind.to_string()));
        }
        let mut env: Vec<(String, String)> =
            env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        for (name, value) in &self.config.service_env {
            env.retain(|(k, _)| k != name);
            env.push((name.clone(), value.clone()));
        }
        env
    }

    pub(super) fn start_service(
        &self,
        name: &str,
        stigg: SocketAddr,
        calls_per_minute: u32,
    ) -> anyhow::Result<Service> {
        self.start_service_with(name, stigg, calls_per_minute, Vec::new())
    }

    /// The service with `extra` settings on top (BENCH_SERVICE_ENV still wins).
    pub(super) fn start_service_with(
        &self,
        name: &str,
        stigg: SocketAddr,
        calls_per_minute: u32,
        extra: Vec<(String, String)>,
    ) -> anyhow::Result<Service> {
        let pg = self.pg()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], procs::free_port()?));
        let mut env = self.service_env(&pg.url, stigg, calls_per_minute, Some(addr));
        for (name, value) in extra {
            if !self.config.service_env.iter().any(|(k, _)| *k == name) {
                env.retain(|(k, _)| *k != name);
                env.push((name, value));
            }
        }
        let daemon = Daemon::start(
            name,
            &self.config.bin_dir.join("onboarding"),
            &["serve".to_owned()],
            &env,
            &self.work.join(format!("{name}.log")),
            &self.work,
        )?;
        wait_http(addr, "/readyz", &daemon)?;
        Ok(Service { daemon, addr })
    }

    fn headers(&self) -> Vec<String> {
        vec![
            "Content-Type: application/json".to_owned(),
            format!("Authorization: Bearer {API_TOKEN}"),
            format!("x-request-id: {REQUEST_ID}"),
            format!("x-correlation-id: {CORRELATION_ID}"),
        ]
    }

    pub(super) fn load(
        &self,
        addr: SocketAddr,
        body: Body,
        connections: u32,
        duration_s: u32,
    ) -> wrk::Load {
        wrk::Load {
            addr,
            path: ROUTE.to_owned(),
            method: "POST".to_owned(),
            headers: self.headers(),
            body,
            connections,
            threads: self.config.threads.min(connections),
            duration_s,
            width: self.config.width(),
            plans: self.plans.clone(),
            idempotency_prefix: None,
        }
    }

    pub(super) fn n(&self, n: u64) -> String {
        format!("{n:0width$}", width = self.config.width())
    }

    pub(super) fn plan_of(&self, n: u64) -> &str {
        let i = usize::try_from((n.max(1) - 1) % self.plans.len() as u64).unwrap_or(0);
        self.plans.get(i).map_or("plan_starter_m", String::as_str)
    }
}

/// One provisioning request to the service (the benchmark's headers).
pub(super) fn post(addr: SocketAddr, body: &str) -> anyhow::Result<http::Response> {
    http::request(
        addr,
        "POST",
        ROUTE,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &format!("Bearer {API_TOKEN}")),
            ("x-request-id", REQUEST_ID),
            ("x-correlation-id", CORRELATION_ID),
        ],
        Some(body.as_bytes()),
        Duration::from_secs(20),
    )
}

/// Waits for a 200 on `path` (at most 30 s), failing early if the process died.
fn wait_http(addr: SocketAddr, path: &str, daemon: &Daemon) -> anyhow::Result<()> {
    wait_until(daemon, &format!("become ready on {addr}{path}"), || {
        http::get(addr, path, Duration::from_secs(2)).is_ok_and(|r| r.status == 200)
    })
}

/// Waits until something accepts connections on `addr` (at most 30 s).
pub(super) fn wait_port(addr: SocketAddr, daemon: &Daemon) -> anyhow::Result<()> {
    wait_until(daemon, &format!("listen on {addr}"), || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    })
}

/// Polls `ready` for at most 30 s; fails early, with the log's tail, if the process died.
fn wait_until(daemon: &Daemon, doing: &str, ready: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if ready() {
            return Ok(());
        }
        if !daemon.alive() || Instant::now() > deadline {
            bail!("{} did not {doing}: {}", daemon.name, daemon.log_tail());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
