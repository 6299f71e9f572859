//! `stripe-emulator`: serves the Stripe emulator on its own until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use stripe_emulator::{
    DEFAULT_API_KEY, DEFAULT_API_VERSION, Emulator, EmulatorConfig, RetryPolicy, RunningEmulator,
    WebhookEndpoint,
};

const ADMIN_ROUTES: &str = "\
Admin routes (JSON, no key):
  POST   /_emulator/customers, /_emulator/subscriptions
  POST   /_emulator/subscriptions/{id}/{status|trial-end|cancel-at-period-end|cancel-at|cancel|price|pause|resume}
  DELETE /_emulator/customers/{id}, /_emulator/subscriptions/{id}
  PUT    /_emulator/webhook            {\"url\", \"secret\"}
  POST   /_emulator/faults/api, /_emulator/faults/delivery
  GET    /_emulator/events, /_emulator/deliveries, /_emulator/requests
  POST   /_emulator/reset";

/// A local emulator of the Stripe API subset that onboarding reads (subscriptions, customers,
/// events), which delivers signed webhooks for the changes made through its `/_emulator`
/// admin routes.
#[derive(Debug, Parser)]
#[command(name = "stripe-emulator", version, about, after_help = ADMIN_ROUTES)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "STRIPE_EMULATOR_BIND", default_value = "127.0.0.1:12111")]
    bind: SocketAddr,
    /// The only `Authorization: Bearer` key accepted. Its own variable, not the service's
    /// `STRIPE_API_KEY`: a real key exported in the shell must never become the emulator's,
    /// which is logged.
    #[arg(long, env = "STRIPE_EMULATOR_API_KEY", default_value = DEFAULT_API_KEY)]
    api_key: String,
    /// The account's API version: events use it, and answers to requests without
    /// `Stripe-Version`.
    #[arg(long, default_value = DEFAULT_API_VERSION)]
    api_version: String,
    /// Where events are POSTed (e.g. http://127.0.0.1:8080/api/stripe/webhooks); none: events
    /// are only recorded. Also settable later with `PUT /_emulator/webhook`.
    #[arg(long, env = "STRIPE_EMULATOR_WEBHOOK_URL", requires = "webhook_secret")]
    webhook_url: Option<String>,
    /// Signing secret(s) for the webhook, `whsec_…`, comma-separated for several.
    #[arg(long, env = "STRIPE_EMULATOR_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Wait before the first retry of a failed delivery; doubled for each further one.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    retry_base_ms: u64,
    /// Delivery attempts per event, the first included (1: no retry).
    #[arg(long, value_name = "N", default_value_t = 4)]
    retry_max_attempts: u32,
    /// No attempt later than this after the event (Stripe's live mode: 259200, three days).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    retry_horizon_secs: u64,
}

impl Args {
    fn config(&self) -> anyhow::Result<EmulatorConfig> {
        let webhook = match (&self.webhook_url, &self.webhook_secret) {
            (Some(url), Some(secrets)) => {
                Some(WebhookEndpoint::new(url, secrets).map_err(anyhow::Error::msg)?)
            }
            _ => None,
        };
        Ok(EmulatorConfig {
            api_key: self.api_key.clone(),
            api_version: self.api_version.clone(),
            webhook,
            retry: RetryPolicy {
                base_delay: Duration::from_millis(self.retry_base_ms),
                max_attempts: self.retry_max_attempts.max(1),
                horizon: Duration::from_secs(self.retry_horizon_secs),
                ..RetryPolicy::default()
            },
            ..EmulatorConfig::default()
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    emulator_kit::init_logs();
    let args = Args::parse();
    let config = args.config()?;
    let running = RunningEmulator::start(Emulator::new(config), args.bind).await?;
    // The key is logged on purpose: it is this tool's own key, which whoever starts it needs
    // for `STRIPE_API_KEY`. The webhook secret is not.
    tracing::info!(
        "{}",
        listening_line(
            &running.base_url(),
            &args.api_key,
            args.webhook_url.as_deref()
        )
    );
    emulator_kit::wait_for_stop().await?;
    tracing::info!("stopping the Stripe emulator");
    running.stop().await;
    Ok(())
}

fn listening_line(url: &str, api_key: &str, webhook_url: Option<&str>) -> String {
    let webhooks = webhook_url.map_or_else(
        || "no webhook endpoint yet".to_owned(),
        |webhook| format!("webhooks to {webhook}"),
    );
    format!("Stripe emulator listening on {url}, accepting Bearer {api_key}; {webhooks}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_up_line_names_the_url_the_key_and_the_endpoint() {
        assert_eq!(
            listening_line("http://127.0.0.1:12111", DEFAULT_API_KEY, None),
            "Stripe emulator listening on http://127.0.0.1:12111, accepting Bearer \
             sk_test_emulator; no webhook endpoint yet"
        );
        assert!(
            listening_line("u", "k", Some("http://h/hook")).ends_with("webhooks to http://h/hook")
        );
    }

    #[test]
    fn a_webhook_url_needs_a_secret() {
        let parse = |args: &[&str]| Args::try_parse_from(["stripe-emulator"].iter().chain(args));
        assert!(parse(&["--webhook-url", "http://127.0.0.1:1/hook"]).is_err());
        let args = parse(&[
            "--webhook-url",
            "http://127.0.0.1:1/hook",
            "--webhook-secret",
            "whsec_a,whsec_b",
            "--retry-base-ms",
            "10",
        ]);
        let config = args
            .map_err(|e| e.to_string())
            .and_then(|a| a.config().map_err(|e| e.to_string()));
        let config = config.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(config.webhook.map(|w| w.secrets.len()), Some(2));
        assert_eq!(config.retry.base_delay, Duration::from_millis(10));
    }
}
