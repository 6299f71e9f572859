//! `onboarding provision`: provisions one subscription through the same use case as the API,
//! without HTTP and without a debug-log row, and prints the JSON result.

use std::process::ExitCode;

use onboarding_domain::input::Field;
use onboarding_domain::model::{CorrelationId, TenantId};
use onboarding_domain::use_cases::OperationContext;
use onboarding_domain::use_cases::provision_subscription::{ProvisionRequest, RawProvisionRequest};
use serde_json::json;

use super::outcome::CommandOutcome;
use crate::config::{Settings, StiggUse};
use crate::failure::Failure;
use crate::startup::Services;

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

/// Runs the use case once; the JSON result (or the failure) goes to standard output.
pub async fn run(settings: &Settings, args: ProvisionArgs) -> anyhow::Result<ExitCode> {
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
    let failed = |failure| CommandOutcome::Failed {
        failure,
        correlation_id: Some(correlation_id.clone()),
    };
    let outcome = match ProvisionRequest::parse(&raw, &services.catalog) {
        Err(details) => failed(Failure::invalid("arguments are invalid", details)),
        Ok(request) => {
            let context = OperationContext {
                correlation_id: correlation_id.clone(),
                tenant_id,
            };
            match services.provision.execute(&request, &context).await {
                Ok(done) => CommandOutcome::Done(json!({
                    "provisioned": true,
                    "stiggCustomerId": done.stigg_customer_id,
                    "stiggSubscriptionId": done.stigg_subscription_id,
                    "alreadyProvisioned": done.already_provisioned,
                })),
                Err(error) => failed(Failure::from(&error)),
            }
        }
    };
    services.shutdown().await;
    Ok(outcome.print()?)
}
