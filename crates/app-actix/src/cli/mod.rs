//! The command-line room: `serve` (the default), `migrate`, `seed-demo`, `provision`,
//! `reconcile`, `sync` and `completions`, one module per command. A command runs on the wiring of
//! `startup` and reports through its own result type ([`outcome`]), never through the HTTP
//! room's.

pub mod completions;
pub mod migrate;
pub mod outcome;
pub mod provision;
pub mod reconcile;
pub mod seed_demo;
pub mod serve;
pub mod sync;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{ServerSettings, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "onboarding",
    version = crate::build_info::VERSION_LINE,
    about = "Provisions organizations' subscriptions in Stigg after Stripe created them."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    /// `serve`'s own settings: given before the command (`onboarding --bind-addr … serve`) or
    /// as environment variables; the other commands do not offer them.
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations and serve HTTP (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Insert a demo organization and trial subscription (idempotent), for trying the API.
    SeedDemo,
    /// Provision one subscription, as the API would, and print the JSON result.
    Provision(provision::ProvisionArgs),
    /// Provision every subscription not yet provisioned (never tried, or stopped halfway),
    /// within the Stigg rate limit, and print a summary.
    Reconcile(reconcile::ReconcileArgs),
    /// Re-read Stripe subscriptions and move Stigg to match now, or handle the failed Stripe
    /// events again (--retry-failed); one JSON line per subscription.
    Sync(sync::SyncArgs),
    /// Print a shell completion script (e.g. `onboarding completions bash >
    /// /etc/bash_completion.d/onboarding`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Runs the command the line names (`serve` when none).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = cli.settings;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::run(&settings, &cli.server).await,
        Command::Migrate => migrate::run(&settings).await,
        Command::SeedDemo => seed_demo::run(&settings).await,
        Command::Provision(args) => provision::run(&settings, args).await,
        Command::Reconcile(args) => reconcile::run(&settings, args).await,
        Command::Sync(args) => sync::run(&settings, args).await,
        Command::Completions { shell } => Ok(completions::run(shell)),
    }
}
