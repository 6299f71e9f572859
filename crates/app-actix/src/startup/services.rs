//! The adapters and use cases, built once from the settings and shared by the server and
//! the commands: the database, the Stigg client (or the bundled emulator), the plan catalog,
//! the metrics registry, and the use cases wired to them with their time limits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use onboarding_adapters_db::{Backend, Database, DbConfig};
use onboarding_adapters_stigg::{CallObserver, HttpStiggGateway, StiggConfig, shown_url};
use onboarding_domain::model::PlanCatalog;
use onboarding_domain::use_cases::provision_subscription::{
    ProvisionSubscription, ProvisioningPolicy,
};
use onboarding_domain::use_cases::reconcile_provisioning::{
    ReconcilePolicy, ReconcileProvisioning,
};
use secrecy::SecretString;
use stigg_emulator::{EmulatorConfig, RunningEmulator};
use tracing::{info, warn};

use super::clock::SystemClock;
use super::stigg_budget::DatabaseBudget;
use crate::config::{ServerSettings, Settings, StiggEndpoint, StiggUse};
use crate::metrics::Metrics;

/// The adapters and use cases, built once and shared by the server and the commands.
pub struct Services {
    pub db: Database,
    pub catalog: Arc<PlanCatalog>,
    pub provision: ProvisionSubscription,
    /// The bundled Stigg emulator, when it was started in-process.
    pub emulator: Option<RunningEmulator>,
    /// Which Stigg the services talk to, fit for a log line: the URL without credentials,
    /// or the bundled emulator.
    pub stigg: String,
    /// This instance's metrics registry; the Stigg client reports its calls into it.
    pub metrics: Arc<Metrics>,
    /// The Stigg client: provisioning's gateway and the sync's lifecycle calls, one rate
    /// limit for both.
    pub stigg_client: Arc<HttpStiggGateway>,
    policy: ProvisioningPolicy,
}

/// Provisioning on `db` through `stigg`.
fn provisioning(
    db: &Database,
    stigg: Arc<HttpStiggGateway>,
    policy: ProvisioningPolicy,
) -> ProvisionSubscription {
    let db_port = Arc::new(db.clone());
    ProvisionSubscription::new(
        db_port.clone(),
        db_port.clone(),
        db_port.clone(),
        db_port,
        stigg,
        Arc::new(SystemClock),
        policy,
    )
}

impl Services {
    /// Loads the catalog, opens the database and applies pending migrations, and connects to
    /// Stigg (or starts the bundled emulator outside production).
    /// `server` when serving: its problems are reported with the others.
    pub async fn build(
        settings: &Settings,
        stigg_use: StiggUse,
        server: Option<&ServerSettings>,
    ) -> anyhow::Result<Self> {
        Self::build_with_deadline(settings, settings.provisioning_deadline, stigg_use, server).await
    }

    /// As [`Services::build`], with a provisioning deadline other than the configured one
    /// (a batch allows for its own turns in the rate-limit queue).
    pub async fn build_with_deadline(
        settings: &Settings,
        deadline: Duration,
        stigg_use: StiggUse,
        server: Option<&ServerSettings>,
    ) -> anyhow::Result<Self> {
        // Before the database is opened: a refusal touches nothing.
        let checked = settings.check(stigg_use, server)?;
        let (target, catalog) = (checked.stigg, Arc::new(checked.catalog));
        // One registry per instance, never the process-global one.
        let metrics = Arc::new(Metrics::new().context("cannot register the metrics")?);
        let db = open_database(settings, true).await?;
        let (stigg_client, emulator, stigg) =
            connect_stigg(settings, target, metrics.clone(), &db).await?;
        let policy = ProvisioningPolicy::for_deadline(deadline);
        let provision = provisioning(&db, stigg_client.clone(), policy);
        Ok(Self {
            db,
            catalog,
            provision,
            emulator,
            stigg,
            metrics,
            stigg_client,
            policy,
        })
    }

    /// The reconcile use case on these services' database, catalog and Stigg client (hence
    /// its rate limit), as a backlog: it leaves the interactive share to API requests, and
    /// a subscription someone else is provisioning (a request, another run, a killed run's
    /// lapsing lease) to that holder, instead of waiting for it.
    pub fn reconcile_provisioning(&self) -> ReconcileProvisioning {
        let background = Arc::new(self.stigg_client.for_background());
        let policy = ProvisioningPolicy {
            wait_for_holder: false,
            ..self.policy
        };
        ReconcileProvisioning::new(
            Arc::new(self.db.clone()),
            self.catalog.clone(),
            provisioning(&self.db, background, policy),
            Arc::new(SystemClock),
            ReconcilePolicy::default(),
        )
    }

    pub async fn shutdown(self) {
        if let Some(emulator) = self.emulator {
            emulator.stop().await;
        }
    }
}

/// Opens the pool; with `migrate`, applies pending migrations first.
pub async fn open_database(settings: &Settings, migrate: bool) -> anyhow::Result<Database> {
    let mut config = DbConfig::new(settings.database_url.clone());
    if let Some(max) = settings.database_max_connections {
        config.max_connections = max;
    }
    let db = onboarding_adapters_db::connect(&config)
        .await
        .context("DATABASE_URL: cannot open the database")?;
    if migrate {
        // The adapter logs what it applied.
        onboarding_adapters_db::run_migrations(db.pool())
            .await
            .context("cannot apply the database migrations")?;
    }
    Ok(db)
}

async fn connect_stigg(
    settings: &Settings,
    target: StiggEndpoint,
    observer: Arc<dyn CallObserver>,
    db: &Database,
) -> anyhow::Result<(Arc<HttpStiggGateway>, Option<RunningEmulator>, String)> {
    let (base_url, api_key, emulator) = match target {
        StiggEndpoint::Remote { base_url, api_key } => (base_url, api_key, None),
        StiggEndpoint::BundledEmulator => {
            let key = format!("emulator-{}", uuid::Uuid::now_v7().simple());
            let running = RunningEmulator::start_on_loopback(EmulatorConfig {
                api_key: key.clone(),
                ..EmulatorConfig::default()
            })
            .await
            .context("cannot start the bundled Stigg emulator")?;
            warn!(
                url = %running.base_url(),
                "using the bundled Stigg emulator (in memory, nothing reaches Stigg; for \
                 development only, APP_ENV=production refuses it)"
            );
            (running.base_url(), SecretString::from(key), Some(running))
        }
    };
    let mut config = StiggConfig::new(base_url.clone(), api_key);
    config.attempt_timeout = settings.stigg_attempt_timeout;
    config.max_attempts = settings.stigg_max_attempts;
    config.backoff_base = settings.stigg_backoff_base;
    config.backoff_cap = settings.stigg_backoff_cap;
    config.calls_per_minute = settings.stigg_calls_per_minute;
    config.interactive_share_percent = settings.stigg_interactive_share.percent();
    let mut builder = HttpStiggGateway::builder(config).observer(observer);
    // The quota belongs to the API key: on PostgreSQL every instance draws from the same
    // buckets. SQLite serves one process, whose buckets stay in memory. (The bundled
    // emulator belongs to this process alone.)
    if db.backend() == Backend::Postgres && emulator.is_none() {
        builder = builder.shared_budget(Arc::new(DatabaseBudget::new(db.clone())));
    }
    let gateway = builder.build().context("cannot build the Stigg client")?;
    let shown = match &emulator {
        Some(_) => format!("the bundled emulator at {base_url} (in memory)"),
        None => shown_url(&base_url),
    };
    info!(stigg = %shown, "Stigg client ready");
    Ok((Arc::new(gateway), emulator, shown))
}

/// The provisioning deadline of a batch (`reconcile`): the configured one, plus the longest
/// turn the batch itself can cause in the Stigg client's rate-limit queue (each of an item's
/// two calls may wait behind every other item in flight), at the pace a batch has: the quota
/// less the interactive share. Without it, at a low `STIGG_CALLS_PER_MINUTE` or a high
/// concurrency, the wait for a token would eat the time meant for Stigg, and a call would
/// start with too little of it left. (Other batches drawing from the same budget make the
/// queue longer still; an item refused for that waits and tries again.)
pub fn batch_deadline(settings: &Settings, concurrency: u16) -> Duration {
    let kept = u32::from(settings.stigg_interactive_share.percent());
    let batch_pace = settings.stigg_calls_per_minute.max(1) * (100 - kept) / 100;
    let per_token = Duration::from_secs(60) / batch_pace.max(1);
    settings.provisioning_deadline + per_token * 2 * u32::from(concurrency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_by_the_batchs_own_turn_in_the_rate_limit_queue() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "onboarding",
            "--stigg-calls-per-minute=250",
            "--provisioning-deadline-ms=15000",
            "reconcile",
        ])
        .unwrap();
        // 4 items, 2 calls each, one token every 300 ms: 200 a minute, the quota less the
        // 20 % kept for API requests.
        assert_eq!(
            batch_deadline(&cli.settings, 4),
            Duration::from_millis(15_000 + 2_400)
        );
        let slow = Settings {
            stigg_calls_per_minute: 60,
            stigg_interactive_share: "0".parse().unwrap(),
            ..cli.settings
        };
        assert_eq!(batch_deadline(&slow, 32), Duration::from_secs(15 + 64));
    }
}
