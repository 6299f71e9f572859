//! Serving an [`Emulator`] over HTTP in the background of the current tokio runtime.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};
use anyhow::Context;
use tokio::task::JoinHandle;

use crate::emulator::Emulator;

/// Seconds a graceful stop waits for in-flight requests (e.g. a long delay fault).
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// An emulator listening on a socket. Dropping it stops the server without waiting; prefer
/// [`stop`](Self::stop).
#[derive(Debug)]
pub struct RunningEmulator {
    emulator: Emulator,
    addr: SocketAddr,
    handle: Option<ServerHandle>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningEmulator {
    /// Binds (use `127.0.0.1:0` in tests) and serves in the background on the current tokio
    /// runtime with one worker. The server installs no signal handlers: its owner decides when
    /// to stop.
    pub async fn start(emulator: Emulator, bind: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(bind)
            .with_context(|| format!("binding the Stigg emulator to {bind}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let served = emulator.clone();
        let server = HttpServer::new(move || {
            let emulator = served.clone();
            App::new().configure(move |cfg| emulator.configure(cfg))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .listen(listener)
        .context("starting the Stigg emulator")?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(Self {
            emulator,
            addr,
            handle: Some(handle),
            task: Some(task),
        })
    }

    /// An emulator with `config` on a free loopback port: what tests and the service's
    /// bundled mode want.
    pub async fn start_on_loopback(config: crate::EmulatorConfig) -> anyhow::Result<Self> {
        Self::start(
            Emulator::new(config),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        )
        .await
    }

    /// `http://HOST:PORT`, without a trailing slash; an unspecified bind address is given as
    /// loopback, which is where a local client can reach it.
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// Stops accepting connections, lets in-flight requests finish (up to a few seconds) and
    /// waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.stop(true).await;
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "Stigg emulator server ended with an error")
                }
                Err(error) => tracing::warn!(%error, "Stigg emulator server task failed"),
            }
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // `stop` sends the command when called; the returned future only awaits completion,
            // which a destructor cannot do.
            drop(handle.stop(false));
        }
    }
}
