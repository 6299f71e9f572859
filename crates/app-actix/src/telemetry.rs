//! Logs: `tracing` events, readable lines on a terminal, JSON lines otherwise
//! (`LOG_FORMAT=json|text` decides explicitly); levels from `RUST_LOG` (default `info`).
//! Logs go to standard error, so commands can print results on standard output.

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Logs straight to standard error, one write per line: for tests and one-shot commands.
pub fn init() {
    install(std::io::stderr);
}

/// Logs for a long-running process. A line is formatted on the thread that logs it, and one
/// background thread writes the lines in bursts (one `write` per burst rather than per line, so a
/// busy server does not make a system call per request). Nothing is dropped: when that thread
/// falls behind, logging waits. Keep the guard until exit; dropping it writes what is left.
pub fn init_buffered() -> WorkerGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::new(std::io::stderr()));
    install(writer);
    guard
}

fn install<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !std::io::stderr().is_terminal(),
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
