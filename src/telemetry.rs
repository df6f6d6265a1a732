//! Tracing setup for dishpatch binaries.

use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), with colours only
/// on a terminal. Call once, first thing in `main`.
///
/// A log line that cannot be written is dropped quietly: by default the
/// subscriber reports it with `eprintln!`, which panics when stderr is a
/// closed pipe (a launcher that died), and the panicking task would be the
/// one logging, such as the one that turns SIGTERM into a shutdown.
pub fn init() {
    use std::io::IsTerminal;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false)
        .init();
}
