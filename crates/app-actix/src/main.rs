use std::process::ExitCode;

use clap::Parser;
use onboarding_app::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    // Real environment variables win over `.env`; a missing `.env` is fine.
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    onboarding_app::telemetry::init();
    if let Err(error) = dotenv
        && !error.not_found()
    {
        tracing::warn!(%error, "could not read .env");
    }
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            // One line that names what is wrong (the variable, for configuration).
            eprintln!("onboarding: {error:#}");
            ExitCode::FAILURE
        }
    }
}
