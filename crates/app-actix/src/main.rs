use std::process::ExitCode;

use clap::Parser;
use onboarding_app::cli::{Cli, Command, run};
use onboarding_app::config::ConfigProblems;
use onboarding_app::telemetry;

// Every request allocates and frees many small buffers across worker threads; glibc's
// allocator spent about a seventh of a worker's time on them under load.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Real environment variables win over `.env`; a missing `.env` is fine.
    let dotenv = dotenvy::dotenv();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if error.use_stderr() => {
            eprintln!("onboarding: {}", usage_error_line(&error));
            return ExitCode::from(2);
        }
        Err(help_or_version) => help_or_version.exit(),
    };
    // The server logs a line per request, so its lines are written in bursts; one-shot
    // commands write each line at once.
    let logs = match cli.command {
        None | Some(Command::Serve) => Some(telemetry::init_buffered(&cli.settings)),
        Some(_) => {
            telemetry::init_with(&cli.settings);
            None
        }
    };
    if let Err(error) = dotenv
        && !error.not_found()
    {
        tracing::warn!(%error, "could not read .env");
    }
    let outcome = run(cli).await;
    // Every log line is out before the last word below.
    drop(logs);
    match outcome {
        Ok(code) => code,
        Err(error) => {
            // One line per problem, naming what is wrong (the variable, for configuration).
            match error.downcast_ref::<ConfigProblems>() {
                Some(problems) => problems
                    .0
                    .iter()
                    .for_each(|problem| eprintln!("onboarding: {problem}")),
                None => eprintln!("onboarding: {error:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// One line for a refused setting or argument. Every setting's value name is its variable,
/// so an invalid value is said by the variable, with the values allowed when there is a list
/// (`APP_ENV: invalid value 'prod' (allowed: development, test, production)`); anything else
/// is clap's own first line.
fn usage_error_line(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};

    let variable = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(name, _)| name.to_owned()),
        _ => None,
    };
    let value = match error.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value)) => Some(value.clone()),
        _ => None,
    };
    let allowed = match error.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(values)) => Some(values.join(", ")),
        _ => None,
    };
    match (variable, value) {
        (Some(variable), Some(value)) => {
            let why = match allowed {
                Some(allowed) => format!("allowed: {allowed}"),
                None => clap_reason(error),
            };
            format!("{variable}: invalid value '{value}' ({why})")
        }
        _ => {
            let rendered = error.render().to_string();
            let line = rendered.lines().next().unwrap_or_default();
            line.trim_start_matches("error: ").to_owned()
        }
    }
}

/// clap's reason for refusing a value: what the value parser said.
fn clap_reason(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let line = rendered.lines().next().unwrap_or_default();
    line.rsplit_once(": ")
        .map_or(line, |(_, reason)| reason)
        .to_owned()
}
