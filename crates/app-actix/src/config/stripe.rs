//! Where Stripe is for the lifecycle sync: the webhook secrets and the API key checked
//! together, down to a remote Stripe, the bundled emulator, or no sync at all.

use std::time::Duration;

use anyhow::Context;
use onboarding_adapters_stripe::{
    DEFAULT_API_URL as DEFAULT_STRIPE_API_URL, WebhookSecrets, parse_api_url,
};
use onboarding_domain::use_cases::sync_subscription::SuspendedPolicy;
use secrecy::{ExposeSecret, SecretString};

use super::{AppEnv, Settings, SuspendedSetting};

/// Where Stripe is, once the settings are checked.
#[derive(Debug, Clone)]
pub enum StripeEndpoint {
    /// No Stripe settings in production: the webhook route answers 404 and nothing syncs.
    Disabled,
    /// A real (or test) Stripe.
    Remote {
        api_url: String,
        api_key: SecretString,
        webhook_secrets: WebhookSecrets,
    },
    /// Nothing configured outside production: the bundled emulator, in-process, signs and
    /// delivers its events to this service.
    BundledEmulator,
}

/// Which command asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeUse {
    /// `serve`: the emulator outside production when nothing is configured.
    Serve,
    /// A command that reads Stripe now (`sync`): it needs the real settings, or the
    /// emulator asked for by name.
    OneShot {
        command: &'static str,
        emulator: bool,
    },
}

impl Settings {
    /// Decides where Stripe is. One of the secret and the key without the other is refused,
    /// naming the missing one.
    pub fn stripe_endpoint(&self, use_: StripeUse) -> anyhow::Result<StripeEndpoint> {
        let production = self.app_env == AppEnv::Production;
        if let StripeUse::OneShot { emulator: true, .. } = use_ {
            anyhow::ensure!(
                !production,
                "--emulator: APP_ENV=production refuses the bundled Stripe emulator"
            );
            return Ok(StripeEndpoint::BundledEmulator);
        }
        match (&self.stripe_webhook_secret, &self.stripe_api_key) {
            (None, None) => match use_ {
                _ if self.stripe_api_url.is_some() => anyhow::bail!(
                    "STRIPE_API_URL is set without STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET"
                ),
                StripeUse::Serve if production => Ok(StripeEndpoint::Disabled),
                StripeUse::Serve => Ok(StripeEndpoint::BundledEmulator),
                StripeUse::OneShot { command, .. } => anyhow::bail!(
                    "STRIPE_API_KEY is not set: `{command}` reads Stripe and never falls back to \
                     the bundled emulator; set STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET, or pass \
                     --emulator"
                ),
            },
            (Some(_), None) => {
                anyhow::bail!("STRIPE_API_KEY is required when STRIPE_WEBHOOK_SECRET is set")
            }
            (None, Some(_)) => {
                anyhow::bail!("STRIPE_WEBHOOK_SECRET is required when STRIPE_API_KEY is set")
            }
            (Some(secrets), Some(api_key)) => {
                let webhook_secrets = WebhookSecrets::parse(secrets.expose_secret()).context(
                    "STRIPE_WEBHOOK_SECRET must list one or more secrets, separated by commas",
                )?;
                let api_url = self
                    .stripe_api_url
                    .as_deref()
                    .unwrap_or(DEFAULT_STRIPE_API_URL);
                parse_api_url(api_url).context("STRIPE_API_URL is not a valid http(s) base URL")?;
                Ok(StripeEndpoint::Remote {
                    api_url: api_url.trim_end_matches('/').to_owned(),
                    api_key: api_key.clone(),
                    webhook_secrets,
                })
            }
        }
    }

    pub fn suspended_policy(&self) -> SuspendedPolicy {
        match self.stripe_sync_suspended {
            SuspendedSetting::Revoke => SuspendedPolicy::Revoke,
            SuspendedSetting::Keep => SuspendedPolicy::Keep,
        }
    }

    pub fn webhook_tolerance(&self) -> Duration {
        Duration::from_secs(self.stripe_webhook_tolerance_secs)
    }

    pub fn unknown_subscription_grace(&self) -> Duration {
        Duration::from_secs(self.stripe_sync_unknown_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn settings(args: &[&str]) -> Settings {
        crate::cli::Cli::try_parse_from(std::iter::once("onboarding").chain(args.iter().copied()))
            .unwrap()
            .settings
    }

    fn refusal(args: &[&str], use_: StripeUse) -> String {
        settings(args)
            .stripe_endpoint(use_)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default()
    }

    #[test]
    fn secret_and_key_go_together_and_name_the_missing_one() {
        assert_eq!(
            refusal(&["--stripe-webhook-secret=whsec_a"], StripeUse::Serve),
            "STRIPE_API_KEY is required when STRIPE_WEBHOOK_SECRET is set"
        );
        assert_eq!(
            refusal(&["--stripe-api-key=rk_test_a"], StripeUse::Serve),
            "STRIPE_WEBHOOK_SECRET is required when STRIPE_API_KEY is set"
        );
        let both = settings(&[
            "--stripe-webhook-secret=whsec_a,whsec_b",
            "--stripe-api-key=rk_test_a",
            "--stripe-api-url=http://127.0.0.1:12111/",
        ]);
        match both.stripe_endpoint(StripeUse::Serve) {
            Ok(StripeEndpoint::Remote {
                api_url,
                webhook_secrets,
                ..
            }) => {
                assert_eq!(api_url, "http://127.0.0.1:12111");
                assert_eq!(webhook_secrets.len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_settings_serve_uses_the_emulator_outside_production_only() {
        assert!(matches!(
            settings(&[]).stripe_endpoint(StripeUse::Serve),
            Ok(StripeEndpoint::BundledEmulator)
        ));
        assert!(matches!(
            settings(&["--app-env=production"]).stripe_endpoint(StripeUse::Serve),
            Ok(StripeEndpoint::Disabled)
        ));
        let sync = StripeUse::OneShot {
            command: "sync",
            emulator: false,
        };
        assert!(refusal(&[], sync).starts_with("STRIPE_API_KEY is not set: `sync`"));
        assert!(
            refusal(
                &["--app-env=production"],
                StripeUse::OneShot {
                    command: "sync",
                    emulator: true
                }
            )
            .contains("refuses the bundled Stripe emulator")
        );
    }
}
