//! `onboarding serve` (the default): applies pending migrations, serves HTTP until
//! SIGTERM/SIGINT, and drains the requests in flight.

use std::process::ExitCode;

use crate::config::{ServerSettings, Settings};
use crate::startup::{Application, stop_on_signals};

pub async fn run(settings: &Settings, server: &ServerSettings) -> anyhow::Result<ExitCode> {
    let app = Application::build(settings, server).await?;
    let force = stop_on_signals(app.handle());
    app.run_until_stopped_or(force).await?;
    Ok(ExitCode::SUCCESS)
}
