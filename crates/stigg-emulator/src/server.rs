//! Serving an [`Emulator`] over HTTP in the background of the current tokio runtime.

use std::net::{Ipv4Addr, SocketAddr};

use emulator_kit::Served;

use crate::emulator::Emulator;

/// An emulator listening on a socket. Dropping it stops the server without waiting; prefer
/// [`stop`](Self::stop).
#[derive(Debug)]
pub struct RunningEmulator {
    emulator: Emulator,
    served: Served,
}

impl RunningEmulator {
    /// Binds (use `127.0.0.1:0` in tests) and serves in the background on the current tokio
    /// runtime with one worker. The server installs no signal handlers: its owner decides when
    /// to stop.
    pub async fn start(emulator: Emulator, bind: SocketAddr) -> anyhow::Result<Self> {
        let served = {
            let emulator = emulator.clone();
            Served::start("the Stigg emulator", bind, move |cfg| {
                emulator.configure(cfg)
            })?
        };
        Ok(Self { emulator, served })
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

    /// `http://HOST:PORT`, without a trailing slash (see [`Served::base_url`]).
    pub fn base_url(&self) -> String {
        self.served.base_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.served.addr()
    }

    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// Stops accepting connections, lets in-flight requests finish (up to a few seconds) and
    /// waits for the server to end.
    pub async fn stop(self) {
        self.served.stop().await;
    }
}
