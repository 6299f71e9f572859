//! `stigg-emulator`: serves the Stigg emulator on its own until Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use clap::Parser;
use stigg_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, RateLimit, RunningEmulator};

/// A local emulator of the Stigg REST v1 subset that onboarding uses.
#[derive(Debug, Parser)]
#[command(name = "stigg-emulator", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "STIGG_EMULATOR_BIND", default_value = "127.0.0.1:8787")]
    bind: SocketAddr,
    /// The only `X-API-KEY` value accepted. Its own variable, not the service's
    /// `STIGG_API_KEY`: a real Stigg key exported in the shell must never become the
    /// emulator's, which is logged.
    #[arg(long, env = "STIGG_EMULATOR_API_KEY", default_value = DEFAULT_API_KEY)]
    api_key: String,
    /// Limit each mutating operation to N calls per minute (429 with `Retry-After` beyond).
    #[arg(long, value_name = "N")]
    rate_limit_per_minute: Option<u32>,
    /// With `--rate-limit-per-minute`: mutations per minute per customer, and per
    /// subscription (0 = no per-entity limit).
    #[arg(long, value_name = "N", default_value_t = 30)]
    rate_limit_per_customer_per_minute: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    emulator_kit::init_logs();
    let args = Args::parse();
    let api_key = args.api_key.clone();
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
    // The key is logged on purpose: it is this development tool's key, the one a client must
    // send to it, not a secret of the service, and whoever starts the emulator needs it to
    // point the service at it (`STIGG_API_URL` and `STIGG_API_KEY`).
    tracing::info!("{}", listening_line(&running.base_url(), &api_key));
    emulator_kit::wait_for_stop().await?;
    tracing::info!("stopping the Stigg emulator");
    running.stop().await;
    Ok(())
}

/// The start-up line: where the emulator listens and the one `X-API-KEY` it accepts.
fn listening_line(url: &str, api_key: &str) -> String {
    format!("Stigg emulator listening on {url}, accepting X-API-KEY {api_key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_up_line_names_the_url_and_the_accepted_key() {
        assert_eq!(
            listening_line("http://127.0.0.1:8787", DEFAULT_API_KEY),
            "Stigg emulator listening on http://127.0.0.1:8787, accepting X-API-KEY emulator-key"
        );
    }

    #[test]
    fn the_accepted_key_defaults_to_the_emulators_own() {
        use clap::CommandFactory;
        let command = Args::command();
        let defaults: Vec<_> = command
            .get_arguments()
            .filter(|arg| arg.get_id() == "api_key")
            .flat_map(|arg| arg.get_default_values().to_vec())
            .collect();
        assert_eq!(defaults, [DEFAULT_API_KEY]);
    }
}
