//! Serving an [`Emulator`] over HTTP, and making its deliveries, in the background of the
//! current tokio runtime.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};
use anyhow::Context;
use tokio::task::JoinHandle;

use crate::config::{EmulatorConfig, WebhookEndpoint};
use crate::emulator::Emulator;

/// Seconds a graceful stop waits for requests under way (a delay fault, say).
const GRACE_SECS: u64 = 5;

/// An emulator listening on a socket with its delivery task running. Dropping it stops both
/// without waiting; prefer [`stop`](Self::stop).
#[derive(Debug)]
pub struct RunningEmulator {
    emulator: Emulator,
    addr: SocketAddr,
    server: Option<(ServerHandle, JoinHandle<std::io::Result<()>>)>,
    deliveries: JoinHandle<()>,
}

impl RunningEmulator {
    /// Binds `bind` (port 0 for a free one) and serves with one worker. No signal handlers are
    /// installed: the owner decides when to stop.
    pub async fn start(emulator: Emulator, bind: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(bind)
            .with_context(|| format!("binding the Stripe emulator to {bind}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let served = emulator.clone();
        let server = HttpServer::new(move || {
            let emulator = served.clone();
            App::new().configure(move |cfg| emulator.configure(cfg))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(GRACE_SECS)
        .listen(listener)
        .context("starting the Stripe emulator")?
        .run();
        let handle = server.handle();
        let server_task = tokio::spawn(server);
        let deliveries = tokio::spawn(emulator.clone().run_deliveries());
        Ok(Self {
            emulator,
            addr,
            server: Some((handle, server_task)),
            deliveries,
        })
    }

    /// An emulator with `config` on a free loopback port: what tests and the service's bundled
    /// mode want (the latter sets the webhook once its own port is known).
    pub async fn start_on_loopback(config: EmulatorConfig) -> anyhow::Result<Self> {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self::start(Emulator::new(config), loopback).await
    }

    /// `http://HOST:PORT` without a trailing slash: what `STRIPE_API_URL` takes. An unspecified
    /// bind address is given as loopback, where a local client reaches it.
    pub fn base_url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// Shorthand for [`Emulator::set_webhook`].
    pub fn set_webhook(&self, endpoint: Option<WebhookEndpoint>) {
        self.emulator.set_webhook(endpoint);
    }

    /// Stops accepting connections, lets requests under way finish (a few seconds at most),
    /// waits for the server to end and stops delivering.
    pub async fn stop(mut self) {
        self.deliveries.abort();
        if let Some((handle, task)) = self.server.take() {
            handle.stop(true).await;
            if let Err(error) = task
                .await
                .map_err(anyhow::Error::from)
                .and_then(|ended| Ok(ended?))
            {
                tracing::warn!(%error, "Stripe emulator server ended with an error");
            }
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.deliveries.abort();
        if let Some((handle, _)) = self.server.take() {
            // `stop` sends the command when called; its future only awaits completion, which a
            // destructor cannot do.
            drop(handle.stop(false));
        }
    }
}
