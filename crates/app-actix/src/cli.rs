//! The `onboarding` command line: `serve` (the default), `migrate`, `seed-demo`, `provision`
//! and `reconcile`.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use onboarding_domain::input::Field;
use onboarding_domain::model::{CorrelationId, TenantId};
use onboarding_domain::use_cases::provision_subscription::{
    OperationContext, ProvisionRequest, RawProvisionRequest,
};
use serde_json::json;

use crate::config::{ServerSettings, Settings, StiggUse};
use crate::error::{ApiError, TraceIds};
pub use crate::reconcile::ReconcileArgs;
use crate::startup::{Application, Services, open_database, stop_on_signals};

#[derive(Debug, Parser)]
#[command(
    name = "onboarding",
    version = crate::build_info::VERSION_LINE,
    about = "Provisions organizations' subscriptions in Stigg after Stripe created them."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    /// `serve`'s own settings: given before the command (`onboarding --bind-addr … serve`) or
    /// as environment variables; the other commands do not offer them.
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations and serve HTTP (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Insert a demo organization and trial subscription (idempotent), for trying the API.
    SeedDemo,
    /// Provision one subscription, as the API would, and print the JSON result.
    Provision(ProvisionArgs),
    /// Provision every subscription not yet provisioned (never tried, or stopped halfway),
    /// within the Stigg rate limit, and print a summary.
    Reconcile(ReconcileArgs),
    /// Print a shell completion script (e.g. `onboarding completions bash >
    /// /etc/bash_completion.d/onboarding`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, clap::Args)]
pub struct ProvisionArgs {
    /// The organization (`organizations.id`); it becomes the Stigg customer id.
    #[arg(long)]
    pub org_id: String,
    /// The organization's Stripe customer (`cus_…`).
    #[arg(long)]
    pub stripe_customer_id: String,
    /// The Stripe subscription to provision (`sub_…`).
    #[arg(long)]
    pub stripe_subscription_id: String,
    /// The subscription's plan code, as in the plan catalog.
    #[arg(long)]
    pub plan_code: String,
    /// Correlation id passed on to Stigg [default: a new one].
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// The tenant the organization must belong to.
    #[arg(long)]
    pub tenant_id: Option<String>,
    /// Run against the bundled in-memory Stigg emulator (nothing reaches Stigg; for trying
    /// the command). Without it and without STIGG_API_KEY the command refuses to run.
    #[arg(long)]
    pub emulator: bool,
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = cli.settings;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(&settings, &cli.server).await?;
            let force = stop_on_signals(app.handle());
            app.run_until_stopped_or(force).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            // The adapter logs what it applied, or that nothing was pending: one line.
            open_database(&settings, true).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::SeedDemo => {
            let db = open_database(&settings, true).await?;
            onboarding_adapters_db::seed_demo(&db).await?;
            tracing::info!(
                "demo data ready: organization org_demo (Stripe customer cus_Demo1), \
                 subscription sub_Demo1 on plan_starter_m"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Provision(args) => provision_once(&settings, args).await,
        Command::Reconcile(args) => crate::reconcile::run(&settings, args).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "onboarding", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs the use case once; the JSON result (or the error body) goes to standard output.
async fn provision_once(settings: &Settings, args: ProvisionArgs) -> anyhow::Result<ExitCode> {
    let stigg_use = StiggUse::OneShot {
        command: "provision",
        emulator: args.emulator,
    };
    let services = Services::build(settings, stigg_use, None).await?;
    let raw = RawProvisionRequest {
        org_id: Field::Value(&args.org_id),
        stripe_customer_id: Field::Value(&args.stripe_customer_id),
        stripe_subscription_id: Field::Value(&args.stripe_subscription_id),
        plan_code: Field::Value(&args.plan_code),
    };
    let correlation_id = match &args.correlation_id {
        Some(raw) => {
            CorrelationId::parse(raw).map_err(|e| anyhow::anyhow!("--correlation-id {e}"))?
        }
        None => CorrelationId::parse(&format!("cli-{}", uuid::Uuid::now_v7()))
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let tenant_id = args
        .tenant_id
        .as_deref()
        .map(TenantId::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--tenant-id {e}"))?;
    let ids = TraceIds {
        request_id: None,
        correlation_id: Some(correlation_id.clone()),
    };
    let outcome = match ProvisionRequest::parse(&raw, &services.catalog) {
        Err(details) => Err(ApiError::invalid("arguments are invalid", details, &ids)),
        Ok(request) => services
            .provision
            .execute(
                &request,
                &OperationContext {
                    correlation_id,
                    tenant_id,
                },
            )
            .await
            .map_err(|e| ApiError::from_provision(&e, &ids)),
    };
    services.shutdown().await;
    let (body, code) = match outcome {
        Ok(done) => (
            json!({
                "provisioned": true,
                "stiggCustomerId": done.stigg_customer_id,
                "stiggSubscriptionId": done.stigg_subscription_id,
                "alreadyProvisioned": done.already_provisioned,
            }),
            ExitCode::SUCCESS,
        ),
        // The HTTP API's error shape, `details` only when there are some.
        Err(error) => (json!(error.body()), ExitCode::FAILURE),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{body}")?;
    Ok(code)
}
