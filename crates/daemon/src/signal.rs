//! Shutdown signals: SIGTERM (systemd, `kill`) and SIGINT (Ctrl-C).

use std::future::Future;
use std::pin::Pin;

use tokio::signal::unix::{SignalKind, signal};

/// A future that resolves, with the signal's name, when SIGTERM or SIGINT arrives.
pub type ShutdownSignal = Pin<Box<dyn Future<Output = &'static str> + Send + 'static>>;

/// Installs the handlers now (a signal that arrives before the future is polled is not
/// lost) and returns the future. Must be called from within a tokio runtime.
pub fn shutdown_signal() -> std::io::Result<ShutdownSignal> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(Box::pin(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }))
}
