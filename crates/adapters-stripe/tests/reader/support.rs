//! A client pointed at a server, with recorded sleeps and exact (ceiling) jitter.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use onboarding_adapters_stripe::{Jitter, Sleeper, StripeClient, StripeConfig};
use onboarding_domain::model::{CorrelationId, StripeCustomerId, StripeSubscriptionId};
use onboarding_domain::ports::CallContext;
use stripe_emulator::{DEFAULT_API_KEY, EmulatorConfig, RunningEmulator};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const KEY: &str = DEFAULT_API_KEY;

pub async fn start() -> anyhow::Result<RunningEmulator> {
    RunningEmulator::start_on_loopback(EmulatorConfig::default()).await
}

/// The default settings, at `api_url`, with the emulator's key.
pub fn config(api_url: &str) -> StripeConfig {
    StripeConfig::new(KEY).with_api_url(api_url)
}

/// A client whose sleeps go to `sleeper` and whose jitter always picks the ceiling, so that
/// delays are exact.
pub fn client_with(config: StripeConfig, sleeper: Arc<RecordingSleeper>) -> StripeClient {
    let ceiling: Arc<dyn Jitter> = Arc::new(|ceiling: Duration| ceiling);
    StripeClient::builder(config)
        .sleeper(sleeper)
        .jitter(ceiling)
        .build()
        .expect("a valid configuration")
}

pub fn ctx(within: Duration) -> CallContext {
    CallContext {
        correlation_id: CorrelationId::parse("corr-stripe-reader").expect("a valid id"),
        deadline: Instant::now() + within,
    }
}

/// A context with time enough for every retry.
pub fn ctx15() -> CallContext {
    ctx(Duration::from_secs(15))
}

pub fn sub(id: &str) -> StripeSubscriptionId {
    StripeSubscriptionId::parse(id).expect("a valid subscription id")
}

pub fn cus(id: &str) -> StripeCustomerId {
    StripeCustomerId::parse(id).expect("a valid customer id")
}

/// Records every sleep; sleeps for real only when asked to.
#[derive(Debug, Default)]
pub struct RecordingSleeper {
    sleeps: Mutex<Vec<Duration>>,
    real: bool,
}

impl RecordingSleeper {
    /// Records and returns at once: tests see exact delays without waiting.
    pub fn instant() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Records and really sleeps.
    pub fn real() -> Arc<Self> {
        Arc::new(Self {
            sleeps: Mutex::default(),
            real: true,
        })
    }

    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, duration: Duration) {
        self.sleeps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(duration);
        if self.real {
            tokio::time::sleep(duration).await;
        }
    }
}
