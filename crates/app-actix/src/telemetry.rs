//! Logs: `tracing` events, readable lines on a terminal, JSON lines otherwise
//! (`LOG_FORMAT=json|text` decides explicitly); levels from `RUST_LOG` (default `info`).
//! Logs go to standard error, so commands can print results on standard output.

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{LogFormat, Settings};

/// Logs straight to standard error, one write per line, set up from the environment
/// (`RUST_LOG`, `LOG_FORMAT`): for tests.
pub fn init() {
    let filter = std::env::var("RUST_LOG").ok();
    let format = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => Some(LogFormat::Json),
        Ok("text") => Some(LogFormat::Text),
        _ => None,
    };
    install(std::io::stderr, filter.as_deref(), format);
}

/// Logs straight to standard error, one write per line, as `settings` say: for one-shot
/// commands.
pub fn init_with(settings: &Settings) {
    install(
        std::io::stderr,
        settings.rust_log.as_deref(),
        settings.log_format,
    );
}

/// Logs for tests: none unless `TEST_LOG` is set (to anything), so that the output of a test
/// run is the test runner's and a failure stands out. `TEST_LOG=1 RUST_LOG=debug` shows the
/// servers' logs again.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init();
    }
}

/// Logs for a long-running process. A line is formatted on the thread that logs it, and one
/// background thread writes the lines in bursts (one `write` per burst rather than per line, so a
/// busy server does not make a system call per request). Nothing is dropped: when that thread
/// falls behind, logging waits. Keep the guard until exit; dropping it writes what is left.
pub fn init_buffered(settings: &Settings) -> WorkerGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::new(std::io::stderr()));
    install(writer, settings.rust_log.as_deref(), settings.log_format);
    guard
}

/// The filter when `RUST_LOG` is not set.
pub const DEFAULT_LOG_FILTER: &str = "info,actix_server=warn";

fn install<W>(writer: W, filter: Option<&str>, format: Option<LogFormat>)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // The settings checked the filter; one from the environment of a test may be anything.
    let filter = filter
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_LOG_FILTER));
    let json = match format {
        Some(format) => format == LogFormat::Json,
        None => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a person at a terminal, never into files or collectors.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    // A second init (tests build several apps in one process) is harmless: keep the first.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}
