//! Checks one webhook delivery with the crate's public `verify`, so that a test in another
//! language can hand it what Stripe's own library signed:
//!
//! ```text
//! verify_signature --secret whsec_a[,whsec_b] --header 't=…,v1=…' [--tolerance-secs 300] < body
//! ```
//!
//! Reads the raw body from standard input. Exits 0 when the delivery is authentic, 1 with the
//! reason on standard error otherwise (a bad command line included).

use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use onboarding_adapters_stripe::{WebhookSecrets, verify};

const USAGE: &str = "usage: verify_signature --secret whsec_…[,whsec_…] --header <Stripe-Signature> \
     [--tolerance-secs N] < body";

fn main() -> ExitCode {
    match run() {
        Ok(_timestamp) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("{reason}");
            ExitCode::FAILURE
        }
    }
}

/// The signed timestamp of an authentic delivery, or why it is not one.
fn run() -> Result<i64, String> {
    let (mut secrets, mut header, mut tolerance) = (None, None, 300);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--secret" => secrets = WebhookSecrets::parse(&value),
            "--header" => header = Some(value),
            "--tolerance-secs" => {
                tolerance = value
                    .parse()
                    .map_err(|_| format!("--tolerance-secs {value:?} is not a number"))?;
            }
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    let secrets = secrets.ok_or_else(|| format!("--secret with a whsec_… is needed\n{USAGE}"))?;
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .map_err(|error| format!("cannot read the body from stdin: {error}"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|error| format!("the clock is before 1970: {error}"))?;
    let now = i64::try_from(now.as_secs()).map_err(|_| "the clock is out of range".to_owned())?;
    verify(
        header.as_deref(),
        &body,
        &secrets,
        now,
        Duration::from_secs(tolerance),
    )
    .map_err(|error| format!("invalid: {error}"))
}
