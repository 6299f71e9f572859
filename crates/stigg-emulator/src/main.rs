//! `stigg-emulator`: serves the Stigg emulator on its own until Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use clap::Parser;
use stigg_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, RateLimit, RunningEmulator};
use tracing_subscriber::EnvFilter;

/// A local emulator of the Stigg REST v1 subset that onboarding uses.
#[derive(Debug, Parser)]
#[command(name = "stigg-emulator", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "STIGG_EMULATOR_BIND", default_value = "127.0.0.1:8787")]
    bind: SocketAddr,
    /// The only `X-API-KEY` value accepted.
    #[arg(long, env = "STIGG_API_KEY", default_value = DEFAULT_API_KEY, hide_env_values = true)]
    api_key: String,
    /// Limit each mutating operation to N calls per minute (429 with `Retry-After` beyond).
    #[arg(long, value_name = "N")]
    rate_limit_per_minute: Option<u32>,
    /// With `--rate-limit-per-minute`: calls per minute per customer (0 = no per-customer limit).
    #[arg(long, value_name = "N", default_value_t = 30)]
    rate_limit_per_customer_per_minute: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = EmulatorConfig {
        api_key: args.api_key,
        rate_limit: args.rate_limit_per_minute.map(|per_minute| RateLimit {
            per_operation_per_minute: per_minute,
            per_customer_per_minute: args.rate_limit_per_customer_per_minute,
            ..RateLimit::default()
        }),
        ..EmulatorConfig::default()
    };
    let running = RunningEmulator::start(Emulator::new(config), args.bind).await?;
    tracing::info!(url = %running.base_url(), "Stigg emulator listening on {}", running.base_url());
    shutdown_signal().await?;
    tracing::info!("stopping the Stigg emulator");
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
