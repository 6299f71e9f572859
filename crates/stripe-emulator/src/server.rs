//! Serving an [`Emulator`] over HTTP, and making its deliveries, in the background of the
//! current tokio runtime.

use std::net::{Ipv4Addr, SocketAddr};

use emulator_kit::Served;
use tokio::task::JoinHandle;

use crate::config::{EmulatorConfig, WebhookEndpoint};
use crate::emulator::Emulator;

/// An emulator listening on a socket with its delivery task running. Dropping it stops both
/// without waiting; prefer [`stop`](Self::stop).
#[derive(Debug)]
pub struct RunningEmulator {
    emulator: Emulator,
    served: Served,
    deliveries: Deliveries,
}

/// The delivery task, stopped when dropped.
#[derive(Debug)]
struct Deliveries(JoinHandle<()>);

impl Drop for Deliveries {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RunningEmulator {
    /// Binds `bind` (port 0 for a free one) and serves with one worker. No signal handlers are
    /// installed: the owner decides when to stop.
    pub async fn start(emulator: Emulator, bind: SocketAddr) -> anyhow::Result<Self> {
        let served = {
            let emulator = emulator.clone();
            Served::start("the Stripe emulator", bind, move |cfg| {
                emulator.configure(cfg)
            })?
        };
        let deliveries = Deliveries(tokio::spawn(emulator.clone().run_deliveries()));
        Ok(Self {
            emulator,
            served,
            deliveries,
        })
    }

    /// An emulator with `config` on a free loopback port: what tests and the service's bundled
    /// mode want (the latter sets the webhook once its own port is known).
    pub async fn start_on_loopback(config: EmulatorConfig) -> anyhow::Result<Self> {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self::start(Emulator::new(config), loopback).await
    }

    /// `http://HOST:PORT` without a trailing slash: what `STRIPE_API_URL` takes (see
    /// [`Served::base_url`]).
    pub fn base_url(&self) -> String {
        self.served.base_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.served.addr()
    }

    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// Shorthand for [`Emulator::set_webhook`].
    pub fn set_webhook(&self, endpoint: Option<WebhookEndpoint>) {
        self.emulator.set_webhook(endpoint);
    }

    /// Stops delivering, stops accepting connections, lets requests under way finish (a few
    /// seconds at most) and waits for the server to end.
    pub async fn stop(self) {
        drop(self.deliveries);
        self.served.stop().await;
    }
}
