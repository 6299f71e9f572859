use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use actix_web::dev::ServerHandle;
use actix_web::web::ServiceConfig;
use actix_web::{App, HttpServer};
use anyhow::Context;
use tokio::task::JoinHandle;

/// Seconds a graceful stop waits for requests under way (a long delay fault, say).
const GRACE_SECS: u64 = 5;

/// An actix app served on a socket in the background of the current tokio runtime, with one
/// worker and no signal handlers: its owner decides when to stop. Dropping it stops the server
/// without waiting; prefer [`stop`](Self::stop).
#[derive(Debug)]
pub struct Served {
    name: &'static str,
    addr: SocketAddr,
    handle: Option<ServerHandle>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Served {
    /// Binds `bind` (port 0 for a free one) and serves what `configure` mounts. `name` is for
    /// errors and logs ("the Stigg emulator").
    pub fn start<F>(name: &'static str, bind: SocketAddr, configure: F) -> anyhow::Result<Self>
    where
        F: Fn(&mut ServiceConfig) + Clone + Send + 'static,
    {
        let listener =
            TcpListener::bind(bind).with_context(|| format!("binding {name} to {bind}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let server = HttpServer::new(move || App::new().configure(configure.clone()))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(GRACE_SECS)
            .listen(listener)
            .with_context(|| format!("starting {name}"))?
            .run();
        let handle = server.handle();
        Ok(Self {
            name,
            addr,
            handle: Some(handle),
            task: Some(tokio::spawn(server)),
        })
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

    /// Stops accepting connections, lets requests under way finish (a few seconds at most) and
    /// waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.stop(true).await;
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "{} ended with an error", self.name),
                Err(error) => tracing::warn!(%error, "{} task failed", self.name),
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // `stop` sends the command when called; the returned future only awaits completion,
            // which a destructor cannot do.
            drop(handle.stop(false));
        }
    }
}
