//! `just bench`: the benchmark of the onboarding service (see docs/benchmarks.md).
//!
//! It starts PostgreSQL (a throwaway cluster, or `BENCH_DATABASE_URL`), seeds it, starts the
//! Stigg emulator and the service, and drives the service with wrk, one scenario at a time.
//! In the same run it measures the limit each scenario is judged against: a bare actix-web
//! handler, pgbench running the service's own statements, the round trips of a first-time
//! provisioning, and the Stigg quota. It writes `bench/out/<time>.json` and `.md` and the
//! latest figures into docs/benchmarks.md.

mod config;
mod http;
mod machine;
mod pg;
mod pgbench;
mod procs;
mod report;
mod scenarios;
mod wrk;

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match scenarios::run() {
        Ok(summary) => {
            let _ = writeln!(std::io::stdout().lock(), "{summary}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
