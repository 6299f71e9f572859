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
            // clap's first line names the variable (`<BIND_ADDR>`) and the reason; the rest
            // is a hint to run --help.
            let rendered = error.render().to_string();
            let line = rendered.lines().next().unwrap_or_default();
            eprintln!("onboarding: {}", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
        Err(help_or_version) => help_or_version.exit(),
    };
    // The server logs a line per request, so its lines are written in bursts; one-shot
    // commands write each line at once.
    let logs = match cli.command {
        None | Some(Command::Serve) => Some(telemetry::init_buffered()),
        Some(_) => {
            telemetry::init();
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
