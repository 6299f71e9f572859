//! The lifecycle sync's pieces, built once: the Stripe read client (or the bundled Stripe
//! emulator), the webhook intake and the event handling use case.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use onboarding_adapters_stripe::{StripeClient, StripeConfig, WebhookSecrets};
use onboarding_domain::ports::{StiggGateway, StiggLifecycle, StripeReader};
use onboarding_domain::use_cases::handle_stripe_events::{HandleStripeEvents, RetryPolicy};
use onboarding_domain::use_cases::sync_subscription::{SyncPorts, SyncSettings, SyncSubscription};
use secrecy::SecretString;
use stripe_emulator::{
    Emulator, EmulatorConfig, NewCustomer, NewSubscription, PriceSpec, RunningEmulator,
    SubscriptionStatus, WebhookEndpoint,
};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::clock::SystemClock;
use super::services::Services;
use crate::config::{Settings, StripeEndpoint};
use crate::http::routes::stripe_webhooks::WEBHOOK_PATH;

/// Where the bundled Stripe emulator listens when the port is free, so that the README's
/// demo can name it; any free port otherwise.
const BUNDLED_EMULATOR_ADDR: &str = "127.0.0.1:12111";

/// One run of the sync: the re-read and every move.
pub const SYNC_DEADLINE: Duration = Duration::from_secs(30);

/// The lifecycle sync, ready to run.
pub struct StripeSync {
    pub events: HandleStripeEvents,
    pub secrets: WebhookSecrets,
    pub tolerance: Duration,
    /// Wakes the worker when the webhook route stored an event.
    pub wakeup: Arc<Notify>,
    /// The bundled Stripe emulator, when it was started in-process.
    pub emulator: Option<RunningEmulator>,
    /// Which Stripe, fit for a log line.
    pub shown: String,
}

impl StripeSync {
    /// Builds the sync on `services` for `endpoint`; `None` when it is disabled.
    pub async fn build(
        services: &Services,
        settings: &Settings,
        endpoint: StripeEndpoint,
    ) -> anyhow::Result<Option<Self>> {
        let (api_url, api_key, secrets, emulator) = match endpoint {
            StripeEndpoint::Disabled => return Ok(None),
            StripeEndpoint::Remote {
                api_url,
                api_key,
                webhook_secrets,
            } => (api_url, api_key, webhook_secrets, None),
            StripeEndpoint::BundledEmulator => {
                let key = format!("sk_test_emulator{}", uuid::Uuid::now_v7().simple());
                let secret = format!("whsec_emulator{}", uuid::Uuid::now_v7().simple());
                let running = start_bundled_emulator(&key).await?;
                warn!(
                    url = %running.base_url(),
                    "using the bundled Stripe emulator (in memory, nothing reaches Stripe; its \
                     admin routes under /_emulator change subscriptions and deliver webhooks \
                     here; APP_ENV=production refuses it)"
                );
                let secrets = WebhookSecrets::parse(&secret)
                    .context("the bundled emulator's webhook secret")?;
                (
                    running.base_url(),
                    SecretString::from(key),
                    secrets,
                    Some(running),
                )
            }
        };
        let client = StripeClient::new(StripeConfig::new(api_key).with_api_url(api_url.clone()))
            .context("cannot build the Stripe client")?;
        let stripe: Arc<dyn StripeReader> = Arc::new(client);
        let db = Arc::new(services.db.clone());
        // Moves are a backlog's calls: they leave the interactive share to API requests.
        let background = Arc::new(services.stigg_client.for_background());
        let sync = SyncSubscription::new(
            SyncPorts {
                orgs: db.clone(),
                subscriptions: db.clone(),
                provisioning: db.clone(),
                states: db.clone(),
                leases: db.clone(),
                stripe,
                stigg: background.clone() as Arc<dyn StiggGateway>,
                lifecycle: background as Arc<dyn StiggLifecycle>,
                clock: Arc::new(SystemClock),
            },
            SyncSettings {
                catalog: services.catalog.clone(),
                suspended: settings.suspended_policy(),
                deadline: SYNC_DEADLINE,
            },
        );
        let events = HandleStripeEvents::new(
            db.clone(),
            db,
            Arc::new(SystemClock),
            sync,
            RetryPolicy {
                unknown_grace: settings.unknown_subscription_grace(),
                ..RetryPolicy::default()
            },
        );
        let shown = match &emulator {
            Some(_) => format!("the bundled emulator at {api_url} (in memory)"),
            None => api_url,
        };
        info!(stripe = %shown, "Stripe sync ready");
        Ok(Some(Self {
            events,
            secrets,
            tolerance: settings.webhook_tolerance(),
            wakeup: Arc::new(Notify::new()),
            emulator,
            shown,
        }))
    }

    /// Points the bundled emulator's deliveries at this service, once it listens.
    pub fn deliver_to(&self, address: SocketAddr) {
        let Some(emulator) = &self.emulator else {
            return;
        };
        emulator.set_webhook(Some(WebhookEndpoint {
            url: format!("http://{address}{WEBHOOK_PATH}"),
            secrets: self.secrets.clone(),
        }));
    }

    pub async fn shutdown(self) {
        if let Some(emulator) = self.emulator {
            emulator.stop().await;
        }
    }
}

/// The bundled emulator, holding the demo organization's Stripe customer and trialing
/// subscription (`seed-demo` puts the same ids in the database).
async fn start_bundled_emulator(api_key: &str) -> anyhow::Result<RunningEmulator> {
    let emulator = Emulator::new(EmulatorConfig {
        api_key: api_key.to_owned(),
        ..EmulatorConfig::default()
    });
    seed_demo(&emulator)?;
    let preferred: SocketAddr = BUNDLED_EMULATOR_ADDR
        .parse()
        .context("the bundled Stripe emulator's address")?;
    match RunningEmulator::start(emulator.clone(), preferred).await {
        Ok(running) => Ok(running),
        Err(_) => RunningEmulator::start(emulator, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("cannot start the bundled Stripe emulator"),
    }
}

fn seed_demo(emulator: &Emulator) -> anyhow::Result<()> {
    let trial_end = chrono::Utc::now() + chrono::Duration::days(14);
    emulator
        .create_customer(NewCustomer {
            id: Some("cus_Demo1".to_owned()),
            email: Some("demo@example.com".to_owned()),
            name: Some("Demo Org".to_owned()),
            ..NewCustomer::default()
        })
        .map_err(|e| anyhow::anyhow!("cannot seed the bundled Stripe emulator: {e}"))?;
    let mut subscription = NewSubscription::new(
        "cus_Demo1",
        PriceSpec {
            id: "price_starter_monthly".to_owned(),
            lookup_key: Some("plan_starter_m".to_owned()),
            interval: Default::default(),
        },
    );
    subscription.id = Some("sub_Demo1".to_owned());
    subscription.status = Some(SubscriptionStatus::Trialing);
    subscription.trial_end = Some(trial_end.timestamp());
    emulator
        .create_subscription(subscription)
        .map_err(|e| anyhow::anyhow!("cannot seed the bundled Stripe emulator: {e}"))?;
    Ok(())
}
