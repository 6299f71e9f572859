//! A client pointed at a server, with recorded sleeps and exact (ceiling) jitter (test doubles
//! from `onboarding-adapters-http`'s test support).

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use onboarding_adapters_http::test_support::RecordingSleeper;
use onboarding_adapters_http::test_support::ceiling_jitter;
use onboarding_adapters_stripe::{StripeClient, StripeConfig};
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
    StripeClient::builder(config)
        .sleeper(sleeper)
        .jitter(ceiling_jitter())
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
