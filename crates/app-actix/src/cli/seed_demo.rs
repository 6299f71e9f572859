//! `onboarding seed-demo`: the demo organization and its trial subscription (idempotent), for
//! trying the API.

use std::process::ExitCode;

use crate::config::Settings;
use crate::startup::open_database;

pub async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    let db = open_database(settings, true).await?;
    onboarding_adapters_db::seed_demo(&db).await?;
    tracing::info!(
        "demo data ready: organization org_demo (Stripe customer cus_Demo1), \
         subscription sub_Demo1 on plan_starter_m"
    );
    Ok(ExitCode::SUCCESS)
}
