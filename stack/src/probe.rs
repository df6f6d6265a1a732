//! `stack probe <part>`: asks a service's `grpc.health.v1` whether it
//! serves, as an orchestrator's probe does, over mutual TLS when the
//! service's TLS settings are in the environment. Kubernetes' own gRPC
//! probes cannot speak TLS, so pods run this instead (an exec probe, in the
//! container, with the container's environment).

use dishpatch::tls::TlsArgs;
use stack::Part;
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};
use tonic::transport::Endpoint;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// What to probe, and how.
#[derive(Debug, clap::Args)]
pub(crate) struct ProbeArgs {
    /// Which service.
    #[arg(value_enum)]
    part: Part,
    /// The address the service listens on, as given to it (its
    /// LISTEN_ADDR, which the probe finds set in its container). An
    /// unspecified address (0.0.0.0) is asked on loopback.
    #[arg(long, env = "LISTEN_ADDR")]
    listen: SocketAddr,
    /// Ask whether it takes calls (readiness: SERVING, until its drain
    /// begins), rather than whether it answers at all (liveness: a
    /// draining service is alive)
    #[arg(long)]
    ready: bool,
    /// How long the answer may take.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    tls: TlsArgs,
}

/// Whether the service answers (with `ready`, SERVING); what it answered,
/// or why it could not be asked, if not.
pub(crate) async fn probe(args: ProbeArgs) -> Result<(), String> {
    let service = args.part.grpc_service().ok_or_else(|| {
        format!(
            "{} is not a gRPC service: probe its GET /health instead",
            args.part.name()
        )
    })?;
    let addr = match args.listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), args.listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), args.listen.port())
        }
        _ => args.listen,
    };
    let tls = args.tls.load()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|error| format!("{addr}: {error}"))?
        .connect_timeout(args.timeout)
        .timeout(args.timeout);
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.client(args.part.name()))
            .map_err(|error| format!("TLS: {error}"))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|error| format!("connecting to {addr}: {error:?}"))?;
    let asked = HealthCheckRequest {
        service: service.to_owned(),
    };
    let answer = HealthClient::new(channel)
        .check(asked)
        .await
        .map_err(|status| format!("{addr}: {status}"))?
        .into_inner()
        .status();
    match answer {
        ServingStatus::Serving => Ok(()),
        ServingStatus::NotServing if !args.ready => Ok(()),
        other => Err(format!(
            "{} on {addr} answers {}",
            args.part.name(),
            other.as_str_name()
        )),
    }
}
