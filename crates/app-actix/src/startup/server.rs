//! The running HTTP service: the actix server around built [`Services`], its connection
//! cap, readiness, and the drain on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::web::Data;
use actix_web::{App, HttpServer};
use anyhow::Context;
use async_trait::async_trait;
use onboarding_adapters_db::Database;
use tracing::{info, warn};

use super::services::Services;
use super::{BackgroundTasks, StripeSync, SyncWorker};
use crate::config::{ServerSettings, Settings, StiggUse, StripeUse};
use crate::http::debug_log::{DEFAULT_BACKLOG_CAPACITY, DebugLogTask, DebugLogWriter};
use crate::http::middleware::api::ApiGuard;
use crate::http::middleware::connection;
use crate::http::middleware::metrics::record_request_metrics;
use crate::http::openapi::OpenApiJson;
use crate::http::routes;
use crate::http::routes::stripe_webhooks::{WEBHOOK_PATH, WebhookIntake};
use crate::http::routes::sync_state::SyncReads;
use crate::http::state::{AppState, Readiness};

/// What the drain allows beyond the provisioning deadline: the last database writes and the
/// answer of a request that used its whole deadline.
const DRAIN_MARGIN: Duration = Duration::from_secs(5);

/// How long in-flight requests may run on after SIGTERM/SIGINT: longer than any request can
/// take. No Stigg call, retry, `Retry-After` wait or wait for another holder's lease runs
/// past the provisioning deadline, so the deadline plus a margin covers every request.
pub fn shutdown_grace(settings: &Settings) -> Duration {
    settings.provisioning_deadline + DRAIN_MARGIN
}

/// Descriptors kept for everything but client connections: the database pool, Stigg's
/// connections, the log, SQLite's files, the listener.
const RESERVED_DESCRIPTORS: u64 = 256;

/// actix-web's own cap per worker, kept when descriptors allow more.
const ACTIX_MAX_CONNECTIONS: u64 = 25_000;

/// Most client connections a worker holds at once. Without a cap, one client opening
/// connections runs the process out of file descriptors, and then every other client, the
/// database pool and the log with it. The process's descriptor limit (the soft one, raised to
/// the hard one first) less a reserve is shared by the workers; beyond it new connections wait
/// in the listen backlog until others close (slow ones are cut off within seconds).
fn max_connections_per_worker(workers: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let per_worker = limit.saturating_sub(RESERVED_DESCRIPTORS) / workers.max(1) as u64;
    let cap = per_worker.clamp(1, ACTIX_MAX_CONNECTIONS);
    info!(
        descriptors = limit,
        workers,
        connections_per_worker = cap,
        "connection cap"
    );
    usize::try_from(cap).unwrap_or(usize::MAX)
}

struct DatabaseReadiness(Database);

#[async_trait]
impl Readiness for DatabaseReadiness {
    async fn check(&self) -> Result<(), String> {
        self.0
            .ping()
            .await
            .map_err(|_| "database unreachable".to_owned())?;
        match onboarding_adapters_db::pending_migrations(self.0.pool()).await {
            Ok(0) => Ok(()),
            Ok(n) => Err(format!("{n} database migration(s) not applied")),
            Err(_) => Err("cannot read the applied migrations".to_owned()),
        }
    }
}

/// The running HTTP service.
pub struct Application {
    server: Server,
    address: SocketAddr,
    services: Services,
    debug_log_task: DebugLogTask,
    /// The drain: how long in-flight requests may run on after a stop.
    grace: Duration,
    /// Work beside the server (the debug-log retention, the sync's worker), stopped within
    /// the drain.
    background: BackgroundTasks,
    /// The lifecycle sync, when it runs (its bundled emulator stops last).
    sync: Option<StripeSync>,
}

impl Application {
    pub async fn build(settings: &Settings, server: &ServerSettings) -> anyhow::Result<Self> {
        let services = Services::build(settings, StiggUse::Serve, Some(server)).await?;
        let endpoint = settings.stripe_endpoint(StripeUse::Serve)?;
        let sync = StripeSync::build(&services, settings, endpoint).await?;
        Self::serve_with_sync(services, sync, settings, server)
    }

    /// Builds the server around already-built services and binds it, without the lifecycle
    /// sync (its webhook route answers 404). The OpenAPI document is rendered here, once.
    pub fn serve(
        services: Services,
        settings: &Settings,
        server_settings: &ServerSettings,
    ) -> anyhow::Result<Self> {
        Self::serve_with_sync(services, None, settings, server_settings)
    }

    /// As [`Application::serve`], with the lifecycle sync: the webhook route stores events
    /// and a background worker handles them.
    pub fn serve_with_sync(
        services: Services,
        sync: Option<StripeSync>,
        settings: &Settings,
        server_settings: &ServerSettings,
    ) -> anyhow::Result<Self> {
        let openapi = Data::new(
            OpenApiJson::render(&services.catalog).context("cannot render the OpenAPI document")?,
        );
        let metrics = Data::from(services.metrics.clone());
        let state = Data::new(AppState {
            provision: services.provision.clone(),
            catalog: services.catalog.clone(),
            readiness: Arc::new(DatabaseReadiness(services.db.clone())),
        });
        let (debug_log, debug_log_task) = DebugLogWriter::start(
            Arc::new(services.db.clone()),
            DEFAULT_BACKLOG_CAPACITY,
            services.metrics.debug_log_rows_dropped(),
        );
        let db_port = Arc::new(services.db.clone());
        let reads = Data::new(SyncReads {
            inbox: db_port.clone(),
            states: db_port.clone(),
        });
        let intake = sync.as_ref().map(|sync| {
            Data::new(WebhookIntake {
                secrets: sync.secrets.clone(),
                tolerance: sync.tolerance,
                inbox: db_port.clone(),
                wakeup: sync.wakeup.clone(),
            })
        });
        let guard = Data::new(ApiGuard {
            api_token: server_settings.api_token.clone(),
            debug_log,
        });
        let mut server = HttpServer::new(move || {
            let app = match &intake {
                Some(intake) => App::new().app_data(intake.clone()),
                None => App::new(),
            };
            app.app_data(state.clone())
                .app_data(reads.clone())
                .app_data(guard.clone())
                .app_data(metrics.clone())
                .app_data(openapi.clone())
                .configure(routes::configure)
                // Outermost, so it sees every answer once, the API middleware's included.
                .wrap(from_fn(record_request_metrics))
        })
        .on_connect(connection::on_connect)
        // Signals are ours (see `stop_on_signals`): actix's own treat SIGINT as a forced stop.
        .disable_signals()
        .shutdown_timeout(shutdown_grace(settings).as_secs_f64().ceil() as u64);
        let workers = server_settings
            .http_workers
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, std::num::NonZeroUsize::get);
        server = server
            .workers(workers)
            .max_connections(max_connections_per_worker(workers));
        // actix-web's own bind: SO_REUSEADDR and a listen backlog of 1,024 (a std listener
        // would queue only 128, and a burst beyond that waits out SYN retransmits).
        let server = server.bind(server_settings.bind_addr).with_context(|| {
            format!("BIND_ADDR: cannot listen on {}", server_settings.bind_addr)
        })?;
        let address = *server
            .addrs()
            .first()
            .context("the HTTP server has no listening address")?;
        let server = server.run();
        // The summary an operator reads first: where it listens and which Stigg it uses.
        info!(%address, stigg = %services.stigg, "listening on http://{address}");
        let mut background = BackgroundTasks::default();
        if let Some(sync) = &sync {
            info!(stripe = %sync.shown, "Stripe webhooks at http://{address}{WEBHOOK_PATH}");
            sync.deliver_to(address);
            SyncWorker {
                events: sync.events.clone(),
                inbox: db_port,
                wakeup: sync.wakeup.clone(),
                metrics: services.metrics.clone(),
            }
            .start(&mut background);
        }
        crate::http::retention::start(
            &mut background,
            services.db.clone(),
            server_settings.debug_log_retention_days,
        );
        super::stigg_budget::sweep_idle_buckets(&mut background, services.db.clone());
        Ok(Self {
            server,
            address,
            services,
            debug_log_task,
            grace: shutdown_grace(settings),
            background,
            sync,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or a stop through the handle), letting in-flight requests
    /// finish, then writes the debug-log rows still waiting and stops the bundled emulator.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until_stopped_or(std::future::pending()).await
    }

    /// As [`run_until_stopped`](Self::run_until_stopped); when `force` resolves first (a
    /// second stop signal), the requests still running are cut off at once. Their rows are
    /// written all the same.
    pub async fn run_until_stopped_or(self, force: impl Future<Output = ()>) -> anyhow::Result<()> {
        let served = {
            let server = self.server;
            tokio::pin!(server);
            tokio::select! {
                served = &mut server => served,
                () = force => {
                    // Dropping the server stops its workers without waiting for them.
                    Ok(())
                }
            }
        };
        info!("server stopped");
        // Background work and the last debug-log rows share what is left of the drain.
        // A sync run may take longer than a request: its own deadline bounds it.
        let background_grace = self
            .grace
            .max(super::stripe_sync::SYNC_DEADLINE + DRAIN_MARGIN);
        tokio::join!(
            self.background.stop(background_grace),
            self.debug_log_task.finish(self.grace)
        );
        if let Some(sync) = self.sync {
            sync.shutdown().await;
        }
        self.services.shutdown().await;
        Ok(served?)
    }
}

/// Stops `server` on SIGTERM or SIGINT alike: no new connections, in-flight requests finish
/// (up to the drain), exit 0. Resolves on a second signal, which should stop at once (see
/// [`Application::run_until_stopped_or`]): actix queues a second stop behind the drain.
pub async fn stop_on_signals(server: ServerHandle) {
    use tokio::signal::unix::{SignalKind, signal};

    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot listen for SIGTERM/SIGINT; stop the server through its handle");
        return std::future::pending().await;
    };
    let mut next = async || {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        }
    };
    let first = next().await;
    info!(
        signal = first,
        "stopping: in-flight requests finish, no new ones are taken"
    );
    // The command is sent now; the drain goes on while this waits for a second signal.
    drop(server.stop(true));
    let second = next().await;
    warn!(signal = second, "second signal: stopping at once");
}
