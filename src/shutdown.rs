//! Turning SIGTERM and Ctrl-C into a cancellation every task can watch.

use tokio_util::sync::CancellationToken;

/// Returns a token cancelled on the first SIGTERM or Ctrl-C (SIGINT).
///
/// The signal handlers are installed before this returns, so a signal that
/// arrives at any later moment is seen.
pub fn on_signal() -> std::io::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};

    let token = CancellationToken::new();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutdown requested");
        cancel.cancel();
    });
    Ok(token)
}
