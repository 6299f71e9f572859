//! Configuration: environment variables (a `.env` file is read first when present), each
//! also settable as a flag. `onboarding --help` lists them with their defaults; secrets are
//! never shown. A default that belongs to an adapter or the domain is taken from there, not
//! written again here.

mod catalog;
mod stigg;
mod stripe;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use onboarding_adapters_db::{
    DEFAULT_DATABASE_URL, DEFAULT_POSTGRES_CONNECTIONS, DEFAULT_SQLITE_CONNECTIONS,
};
use onboarding_adapters_stigg::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP, DEFAULT_BASE_URL,
    DEFAULT_CALLS_PER_MINUTE, DEFAULT_MAX_ATTEMPTS,
};
use onboarding_adapters_stripe::DEFAULT_API_URL as DEFAULT_STRIPE_API_URL;
use onboarding_domain::model::PlanCatalog;
use onboarding_domain::use_cases::provision_subscription::ProvisioningPolicy;
use secrecy::SecretString;

pub use catalog::{
    BUILT_IN_PLAN_CATALOG, DEFAULT_PLAN_CATALOG, built_in_plan_catalog, parse_plan_catalog,
};
pub use stigg::{InteractiveShare, StiggEndpoint};
pub use stripe::{StripeEndpoint, StripeUse};

use crate::telemetry::DEFAULT_LOG_FILTER;

/// A `&'static str` formatted once, for the clap attributes that want one: a default or a
/// help text that names another crate's constant.
macro_rules! text_once {
    ($($format:tt)*) => {{
        static TEXT: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!($($format)*));
        TEXT.as_str()
    }};
}

/// Where the service runs; production refuses the shortcuts that make development easy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

fn secret(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(raw.to_owned()))
}

fn millis(raw: &str) -> Result<Duration, String> {
    raw.parse::<u64>()
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .ok_or_else(|| "must be a positive whole number of milliseconds".to_owned())
}

/// `STRIPE_SYNC_SUSPENDED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuspendedSetting {
    Revoke,
    Keep,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

fn log_filter(raw: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(raw)
        .map(|_| raw.to_owned())
        .map_err(|e| format!("not a log filter ({e}), e.g. `info` or `info,onboarding_app=debug`"))
}

// Every setting's value name is its variable: `main` names a refused value by it.
/// The settings of every command.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Settings (each also an environment variable; `.env` is read)")]
pub struct Settings {
    /// `sqlite://PATH` (embedded) or `postgres://…` (production).
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        value_parser = secret,
        hide_env_values = true,
        global = true
    )]
    pub database_url: SecretString,

    #[arg(
        long,
        env = "DATABASE_MAX_CONNECTIONS",
        value_name = "DATABASE_MAX_CONNECTIONS",
        help = text_once!(
            "Most database connections in the pool [default: {DEFAULT_SQLITE_CONNECTIONS} on \
             SQLite, {DEFAULT_POSTGRES_CONNECTIONS} on PostgreSQL]"
        ),
        global = true
    )]
    pub database_max_connections: Option<usize>,

    /// Stigg server key, sent as X-API-KEY (secret).
    #[arg(
        long,
        env = "STIGG_API_KEY",
        value_name = "STIGG_API_KEY",
        value_parser = secret,
        hide_env_values = true,
        global = true
    )]
    pub stigg_api_key: Option<SecretString>,

    #[arg(
        long,
        env = "STIGG_API_URL",
        value_name = "STIGG_API_URL",
        help = text_once!(
            "Stigg REST base URL [default: {DEFAULT_BASE_URL}, or the bundled emulator when \
             neither this nor STIGG_API_KEY is set outside production]"
        ),
        global = true
    )]
    pub stigg_api_url: Option<String>,

    /// Per-attempt timeout of a Stigg call, in milliseconds.
    #[arg(
        long = "stigg-attempt-timeout-ms",
        env = "STIGG_ATTEMPT_TIMEOUT_MS",
        value_name = "STIGG_ATTEMPT_TIMEOUT_MS",
        default_value = text_once!("{}", DEFAULT_ATTEMPT_TIMEOUT.as_millis()),
        value_parser = millis,
        global = true
    )]
    pub stigg_attempt_timeout: Duration,

    /// Deadline of a whole provisioning (every Stigg call, retry and wait), in milliseconds.
    #[arg(
        long = "provisioning-deadline-ms",
        env = "PROVISIONING_DEADLINE_MS",
        value_name = "PROVISIONING_DEADLINE_MS",
        default_value = text_once!("{}", ProvisioningPolicy::default().deadline.as_millis()),
        value_parser = millis,
        global = true
    )]
    pub provisioning_deadline: Duration,

    /// Most attempts per Stigg call.
    #[arg(
        long,
        env = "STIGG_MAX_ATTEMPTS",
        value_name = "STIGG_MAX_ATTEMPTS",
        default_value_t = DEFAULT_MAX_ATTEMPTS,
        value_parser = clap::value_parser!(u32).range(1..=10),
        global = true
    )]
    pub stigg_max_attempts: u32,

    /// First backoff ceiling between Stigg attempts, in milliseconds; it doubles per retry.
    #[arg(
        long = "stigg-backoff-base-ms",
        env = "STIGG_BACKOFF_BASE_MS",
        value_name = "STIGG_BACKOFF_BASE_MS",
        default_value = text_once!("{}", DEFAULT_BACKOFF_BASE.as_millis()),
        value_parser = millis,
        global = true
    )]
    pub stigg_backoff_base: Duration,

    /// Largest backoff between Stigg attempts, in milliseconds.
    #[arg(
        long = "stigg-backoff-cap-ms",
        env = "STIGG_BACKOFF_CAP_MS",
        value_name = "STIGG_BACKOFF_CAP_MS",
        default_value = text_once!("{}", DEFAULT_BACKOFF_CAP.as_millis()),
        value_parser = millis,
        global = true
    )]
    pub stigg_backoff_cap: Duration,

    /// Stigg calls per minute, per operation: the API key's quota (on PostgreSQL shared by
    /// every instance; never divide it by the number of instances).
    #[arg(
        long,
        env = "STIGG_CALLS_PER_MINUTE",
        value_name = "STIGG_CALLS_PER_MINUTE",
        default_value_t = DEFAULT_CALLS_PER_MINUTE,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub stigg_calls_per_minute: u32,

    /// Share of each operation's Stigg quota kept for API requests (`reconcile` and the sync
    /// worker use it only while no API request needs it): 20, 20% or 0.2; 0 to 90.
    #[arg(
        long,
        env = "STIGG_INTERACTIVE_SHARE",
        value_name = "STIGG_INTERACTIVE_SHARE",
        default_value = "20%",
        global = true
    )]
    pub stigg_interactive_share: InteractiveShare,

    /// Comma-separated `whsec_…` secrets Stripe signs webhooks with (several while rotating;
    /// secret). Enables `POST /api/stripe/webhooks`; goes with STRIPE_API_KEY.
    #[arg(
        long,
        env = "STRIPE_WEBHOOK_SECRET",
        value_name = "STRIPE_WEBHOOK_SECRET",
        value_parser = secret,
        hide_env_values = true,
        global = true
    )]
    pub stripe_webhook_secret: Option<SecretString>,

    /// Largest accepted distance, in seconds, between a webhook's signed timestamp and now.
    #[arg(
        long,
        env = "STRIPE_WEBHOOK_TOLERANCE_SECS",
        value_name = "STRIPE_WEBHOOK_TOLERANCE_SECS",
        default_value_t = 300,
        global = true
    )]
    pub stripe_webhook_tolerance_secs: u64,

    /// Stripe key the sync re-reads subscriptions and customers with (a restricted key with
    /// read access suffices; secret). Goes with STRIPE_WEBHOOK_SECRET.
    #[arg(
        long,
        env = "STRIPE_API_KEY",
        value_name = "STRIPE_API_KEY",
        value_parser = secret,
        hide_env_values = true,
        global = true
    )]
    pub stripe_api_key: Option<SecretString>,

    #[arg(
        long,
        env = "STRIPE_API_URL",
        value_name = "STRIPE_API_URL",
        help = text_once!(
            "Stripe API base URL [default: {DEFAULT_STRIPE_API_URL}, or the bundled Stripe \
             emulator when neither STRIPE_API_KEY nor STRIPE_WEBHOOK_SECRET is set outside \
             production]"
        ),
        global = true
    )]
    pub stripe_api_url: Option<String>,

    /// What paused and unpaid Stripe subscriptions get in Stigg: `revoke` (canceled at once,
    /// entitlements revoked) or `keep` (left as they are).
    #[arg(
        long,
        env = "STRIPE_SYNC_SUSPENDED",
        value_name = "STRIPE_SYNC_SUSPENDED",
        value_enum,
        default_value = "revoke",
        global = true
    )]
    pub stripe_sync_suspended: SuspendedSetting,

    /// How long, in seconds, an event about a subscription the database does not know yet
    /// is retried before it fails.
    #[arg(
        long,
        env = "STRIPE_SYNC_UNKNOWN_GRACE_SECS",
        value_name = "STRIPE_SYNC_UNKNOWN_GRACE_SECS",
        default_value_t = 3600,
        global = true
    )]
    pub stripe_sync_unknown_grace_secs: u64,

    /// Plan catalog: plan code → Stigg plan id and billing period.
    #[arg(
        long,
        env = "PLAN_CATALOG",
        value_name = "PLAN_CATALOG",
        default_value = DEFAULT_PLAN_CATALOG,
        global = true
    )]
    pub plan_catalog: PathBuf,

    /// `production` refuses the bundled emulator and a missing STIGG_API_KEY.
    #[arg(
        long,
        env = "APP_ENV",
        value_name = "APP_ENV",
        value_enum,
        default_value = "development",
        global = true
    )]
    pub app_env: AppEnv,

    #[arg(
        long = "rust-log",
        env = "RUST_LOG",
        value_name = "RUST_LOG",
        help = text_once!("Log levels, `tracing` filter syntax [default: {DEFAULT_LOG_FILTER}]"),
        value_parser = log_filter,
        global = true
    )]
    pub rust_log: Option<String>,

    /// `json` or `text` [default: json when standard error is not a terminal, else text].
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_name = "LOG_FORMAT",
        value_enum,
        global = true
    )]
    pub log_format: Option<LogFormat>,
}

/// The settings of `serve` alone (the default command).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server settings (each also an environment variable)")]
pub struct ServerSettings {
    /// Listen address of the HTTP server.
    #[arg(
        long,
        env = "BIND_ADDR",
        value_name = "BIND_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub bind_addr: SocketAddr,

    /// HTTP worker threads [default: one per CPU the process may use]. Set it where the CPUs
    /// seen are not the CPUs granted (a container's CPU quota).
    #[arg(long, env = "HTTP_WORKERS", value_name = "HTTP_WORKERS")]
    pub http_workers: Option<std::num::NonZeroUsize>,

    /// When set, API routes require `Authorization: Bearer <API_TOKEN>` (secret).
    #[arg(
        long,
        env = "API_TOKEN",
        value_name = "API_TOKEN",
        value_parser = secret,
        hide_env_values = true
    )]
    pub api_token: Option<SecretString>,

    /// Days `debug_logs` rows are kept; older ones are deleted by the running service (at
    /// start-up, then hourly). 0 keeps them forever.
    #[arg(
        long,
        env = "DEBUG_LOG_RETENTION_DAYS",
        value_name = "DEBUG_LOG_RETENTION_DAYS",
        default_value_t = 30
    )]
    pub debug_log_retention_days: u32,
}

impl ServerSettings {
    /// What serving needs beyond the shared settings, as problems (see [`Settings::check`]).
    pub fn problems(&self, app_env: AppEnv) -> Vec<String> {
        let mut problems = Vec::new();
        if app_env == AppEnv::Production && self.api_token.is_none() {
            problems.push("API_TOKEN is required when APP_ENV=production".to_owned());
        }
        problems
    }
}

/// The settings a command runs with, once checked.
#[derive(Debug)]
pub struct CheckedSettings {
    pub stigg: StiggEndpoint,
    pub catalog: PlanCatalog,
}

/// Every problem found in the settings, one line each, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigProblems(pub Vec<String>);

/// Which commands may run on the bundled emulator when no Stigg is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StiggUse {
    /// `serve` outside production falls back to the emulator, and says so, so that `cargo
    /// run` works on a fresh machine.
    Serve,
    /// A one-shot command that writes Stigg state (`provision`, `reconcile`). Against a
    /// throwaway in-memory Stigg it would record provisioning that never happened in the
    /// real database, so it never falls back: it refuses, unless `--emulator` asks for the
    /// emulator by name.
    OneShot {
        command: &'static str,
        emulator: bool,
    },
}

impl Settings {
    /// True when STIGG_API_URL or STIGG_API_KEY is set.
    pub fn has_stigg_settings(&self) -> bool {
        self.stigg_api_url.is_some() || self.stigg_api_key.is_some()
    }

    /// Every problem of the settings for a command, all at once: an operator fixes them in
    /// one go instead of meeting them one restart at a time. On success, where Stigg is and
    /// the plan catalog.
    /// `server`'s problems come first when serving.
    pub fn check(
        &self,
        stigg_use: StiggUse,
        server: Option<&ServerSettings>,
    ) -> Result<CheckedSettings, ConfigProblems> {
        let mut problems = server.map_or_else(Vec::new, |s| s.problems(self.app_env));
        let stigg = self
            .stigg_endpoint(stigg_use)
            .map_err(|e| problems.push(format!("{e:#}")))
            .ok();
        let catalog = self
            .load_plan_catalog()
            .map_err(|e| problems.push(format!("{e:#}")))
            .ok();
        if stigg_use == StiggUse::Serve
            && let Err(e) = self.stripe_endpoint(StripeUse::Serve)
        {
            problems.push(format!("{e:#}"));
        }
        match (stigg, catalog) {
            (Some(stigg), Some(catalog)) if problems.is_empty() => {
                Ok(CheckedSettings { stigg, catalog })
            }
            _ => Err(ConfigProblems(problems)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Both {
        #[command(flatten)]
        settings: Settings,
        #[command(flatten)]
        server: ServerSettings,
    }

    fn parse(args: &[&str]) -> Result<Both, clap::Error> {
        use clap::Parser;
        Both::try_parse_from(std::iter::once("onboarding").chain(args.iter().copied()))
    }

    fn both(args: &[&str]) -> Both {
        parse(args).unwrap()
    }

    fn settings(args: &[&str]) -> Settings {
        both(args).settings
    }

    fn refusal(settings: &Settings) -> String {
        settings
            .stigg_endpoint(StiggUse::Serve)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn without_stigg_settings_development_uses_the_emulator_and_production_refuses() {
        let dev = settings(&[]);
        assert!(matches!(
            dev.stigg_endpoint(StiggUse::Serve),
            Ok(StiggEndpoint::BundledEmulator)
        ));
        let prod = settings(&["--app-env=production"]);
        assert_eq!(
            refusal(&prod),
            "STIGG_API_KEY is required when APP_ENV=production"
        );
        let prod_url_only =
            settings(&["--app-env=production", "--stigg-api-url=https://stigg.test"]);
        assert_eq!(
            refusal(&prod_url_only),
            "STIGG_API_KEY is required when APP_ENV=production"
        );
    }

    #[test]
    fn one_shot_commands_never_fall_back_to_the_emulator_unless_asked() {
        let provision = |emulator| StiggUse::OneShot {
            command: "provision",
            emulator,
        };
        let refused = settings(&[])
            .stigg_endpoint(provision(false))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            refused.starts_with("STIGG_API_KEY is not set: `provision`")
                && refused.contains("--emulator"),
            "{refused}"
        );
        assert!(matches!(
            settings(&[]).stigg_endpoint(provision(true)),
            Ok(StiggEndpoint::BundledEmulator)
        ));
        // Asked for by name, the emulator wins over configured settings ...
        assert!(matches!(
            settings(&["--stigg-api-key=k"]).stigg_endpoint(provision(true)),
            Ok(StiggEndpoint::BundledEmulator)
        ));
        // ... but never in production.
        assert!(
            settings(&["--app-env=production", "--stigg-api-key=k"])
                .stigg_endpoint(provision(true))
                .is_err()
        );
        assert!(matches!(
            settings(&["--stigg-api-key=k"]).stigg_endpoint(provision(false)),
            Ok(StiggEndpoint::Remote { .. })
        ));
    }

    #[test]
    fn http_workers_default_to_actix_and_zero_is_refused() {
        assert_eq!(both(&[]).server.http_workers, None);
        assert_eq!(
            both(&["--http-workers=3"])
                .server
                .http_workers
                .map(|n| n.get()),
            Some(3)
        );
        let refused = parse(&["--http-workers=0"]).err();
        assert!(
            refused.is_some_and(|e| e.to_string().contains("HTTP_WORKERS")),
            "0 workers accepted"
        );
    }

    #[test]
    fn a_key_alone_targets_stigg_itself() {
        let with_key = settings(&["--stigg-api-key=server-k"]);
        match with_key.stigg_endpoint(StiggUse::Serve) {
            Ok(StiggEndpoint::Remote { base_url, .. }) => {
                assert_eq!(base_url, "https://api.stigg.io")
            }
            other => panic!("{other:?}"),
        }
    }

    fn problems(args: &[&str], stigg_use: StiggUse) -> Vec<String> {
        let Both { settings, server } = both(args);
        let server = (stigg_use == StiggUse::Serve).then_some(&server);
        settings
            .check(stigg_use, server)
            .err()
            .map(|e| e.0)
            .unwrap_or_default()
    }

    #[test]
    fn log_settings_are_checked_by_name() {
        let refused = parse(&["--log-format=xml"]).err().map(|e| e.to_string());
        assert!(refused.is_some_and(|e| e.contains("LOG_FORMAT")));
        let refused = parse(&["--rust-log=info,=[bad"])
            .err()
            .map(|e| e.to_string());
        assert!(
            refused.as_deref().is_some_and(|e| e.contains("RUST_LOG")),
            "{refused:?}"
        );
        let fine = settings(&["--log-format=json", "--rust-log=debug,actix_server=warn"]);
        assert_eq!(fine.log_format, Some(LogFormat::Json));
        assert_eq!(fine.rust_log.as_deref(), Some("debug,actix_server=warn"));
    }

    #[test]
    fn every_problem_is_reported_in_one_run() {
        assert_eq!(
            problems(&["--app-env=production"], StiggUse::Serve),
            [
                "API_TOKEN is required when APP_ENV=production",
                "STIGG_API_KEY is required when APP_ENV=production",
            ]
        );
        let three = problems(
            &[
                "--app-env=production",
                "--stigg-api-url=nope",
                "--plan-catalog=/nonexistent/plans.toml",
            ],
            StiggUse::Serve,
        );
        assert_eq!(three.len(), 3, "{three:?}");
        assert!(
            three[2].starts_with("PLAN_CATALOG: cannot read"),
            "{three:?}"
        );
        // `provision` does not serve: no API_TOKEN needed.
        assert!(
            problems(
                &["--app-env=production", "--stigg-api-key=k"],
                StiggUse::OneShot {
                    command: "provision",
                    emulator: false
                }
            )
            .is_empty()
        );
        assert!(problems(&[], StiggUse::Serve).is_empty());
        assert!(
            problems(
                &["--app-env=production", "--api-token=t", "--stigg-api-key=k"],
                StiggUse::Serve
            )
            .is_empty()
        );
    }

    #[test]
    fn a_stigg_url_without_a_key_is_refused() {
        let refused = problems(&["--stigg-api-url=http://127.0.0.1:8787"], StiggUse::Serve);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].starts_with("STIGG_API_KEY is required when STIGG_API_URL is set"),
            "{refused:?}"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = both(&[
            "--stigg-api-key=server-secret-1",
            "--api-token=token-secret-2",
            "--database-url=postgres://u:hunter2@db/x",
        ]);
        let shown = format!("{:?} {:?}", s.settings, s.server);
        for secret in ["server-secret-1", "token-secret-2", "hunter2"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
