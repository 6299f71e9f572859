//! `onboarding completions SHELL`: the shell completion script, on standard output.

use std::process::ExitCode;

use clap::CommandFactory;

use super::Cli;

pub fn run(shell: clap_complete::Shell) -> ExitCode {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "onboarding", &mut std::io::stdout());
    ExitCode::SUCCESS
}
