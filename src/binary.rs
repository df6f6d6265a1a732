//! The `main` every dishpatch binary shares: logs, flags (with their
//! environment fallbacks), span export if the environment asks for it
//! ([`crate::otlp`]), signal handling, build, one line on stdout with
//! the bound address (launchers and tests read it to find the port), then
//! serving until SIGTERM or Ctrl-C.

use std::{error::Error, ffi::OsString, future::Future, net::SocketAddr};
use tokio_util::sync::CancellationToken;

/// A bound server a binary runs: a service, or the edge.
pub trait Program {
    /// The address it is bound to.
    fn local_addr(&self) -> SocketAddr;

    /// Serves until `shutdown` is cancelled, then stops gracefully.
    fn serve(self, shutdown: CancellationToken) -> impl Future<Output = Result<(), Box<dyn Error>>>;
}

/// Runs the program named `name` that `build` makes from the process's
/// command line.
pub async fn main<C, P, E, F>(name: &str, build: impl FnOnce(C) -> F) -> Result<(), Box<dyn Error>>
where
    C: clap::Parser,
    P: Program,
    E: Error + 'static,
    F: Future<Output = Result<P, E>>,
{
    main_from(name, std::env::args_os(), build).await
}

/// [`main`] with the command line given: `args` starts with the program
/// name, as `std::env::args_os` does.
pub async fn main_from<C, P, E, F, I, T>(
    name: &str,
    args: I,
    build: impl FnOnce(C) -> F,
) -> Result<(), Box<dyn Error>>
where
    C: clap::Parser,
    P: Program,
    E: Error + 'static,
    F: Future<Output = Result<P, E>>,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    crate::telemetry::init();
    let config = C::parse_from(args);
    let exporting = crate::otlp::start_from_env(name)?;
    let shutdown = crate::shutdown::on_signal()?;
    let program = build(config).await.map_err(|error| Fatal(error.to_string()))?;
    println!("{name} listening on {}", program.local_addr());
    let served = program.serve(shutdown).await;
    if let Some(exporting) = exporting {
        exporting.finish().await;
    }
    served
}

/// Why a program could not start, as `main` prints an error it returns
/// (`Error: {:?}`): the message itself, not the error's structure.
#[derive(thiserror::Error)]
#[error("{0}")]
struct Fatal(String);

impl std::fmt::Debug for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
