//! `onboarding migrate`: applies pending migrations and exits.

use std::process::ExitCode;

use crate::config::Settings;
use crate::startup::open_database;

pub async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    // The adapter logs what it applied, or that nothing was pending: one line.
    open_database(settings, true).await?;
    Ok(ExitCode::SUCCESS)
}
