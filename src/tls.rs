//! Mutual TLS between the services and their callers.
//!
//! A deployment has a CA of its own, and every part of the stack a
//! certificate from it whose DNS name is the part's name: `edge`,
//! `restaurant-svc`, `order-svc`, `notify-svc` (`stack certs` makes them).
//! With TLS on:
//! - a service presents its certificate, and the handshake refuses a caller
//!   that presents none from the CA. Of those that do, only the service's
//!   own callers (by the name in their certificate) may call its methods;
//!   others get PERMISSION_DENIED. Health, reflection and `/metrics` answer
//!   any certificate from the CA, so probes, grpcurl and Prometheus need
//!   one but no particular name;
//! - a caller (the edge, order-svc) presents its certificate, and accepts a
//!   replica only if the replica's certificate names the service it meant
//!   to call, whatever address the replica was found at.

use futures_util::future::{Either, Ready, ready};
use std::{
    net::SocketAddr,
    path::PathBuf,
    task::{Context, Poll},
    time::Duration,
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig, server::TlsConnectInfo};

/// How long a caller may take over its handshake: a connection that has
/// not finished it by then is closed, so half-open handshakes cannot pile
/// up.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);

/// The TLS flags every part takes: all three, or none for plaintext.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Mutual TLS")]
pub struct TlsArgs {
    /// This process's certificate (PEM), from the deployment's CA and
    /// naming the part it is (edge, restaurant-svc, …): presented to
    /// callers and, when calling, to services. With --tls-key and
    /// --tls-ca, turns on mutual TLS; `stack certs` makes them
    #[arg(long, env = "TLS_CERT", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM)
    #[arg(long, env = "TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// The deployment's CA certificate (PEM): peers must present a
    /// certificate it signed
    #[arg(long, env = "TLS_CA", requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
}

/// A service's TLS flags: [`TlsArgs`], which a service listening beyond
/// loopback must be given, or be told it may do without.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeTlsArgs {
    #[command(flatten)]
    pub tls: TlsArgs,

    /// Serve plaintext even beyond loopback, to any caller that reaches
    /// the port: only where the network itself authenticates callers (a
    /// service mesh's mutual TLS). Without TLS flags, a service listening
    /// beyond loopback refuses to start unless given this
    #[arg(long, env = "INSECURE_PLAINTEXT", help_heading = "Mutual TLS")]
    pub insecure_plaintext: bool,
}

impl From<TlsArgs> for ServeTlsArgs {
    fn from(tls: TlsArgs) -> Self {
        Self {
            tls,
            insecure_plaintext: false,
        }
    }
}

impl ServeTlsArgs {
    /// The TLS `service` serves `listen` with, read; plaintext (`None`) on
    /// loopback, or beyond it only when told.
    pub fn load_for(&self, service: &str, listen: SocketAddr) -> Result<Option<Tls>, String> {
        let tls = self.tls.load()?;
        if tls.is_none() && !listen.ip().is_loopback() && !self.insecure_plaintext {
            return Err(format!(
                "{service} would listen on {listen}, beyond loopback, in plaintext: any caller that \
                 reaches the port could call it. Give it a certificate from the deployment's CA \
                 (--tls-cert, --tls-key, --tls-ca; `stack certs` makes them), or, only where the \
                 network authenticates callers itself (a service mesh), --insecure-plaintext"
            ));
        }
        Ok(tls)
    }
}

/// This process's certificate and the deployment's CA, loaded.
#[derive(Debug, Clone)]
pub struct Tls {
    identity: Identity,
    ca: Certificate,
}

impl TlsArgs {
    /// The files read, or `None` when TLS is off.
    pub fn load(&self) -> Result<Option<Tls>, String> {
        let (Some(cert), Some(key), Some(ca)) = (&self.tls_cert, &self.tls_key, &self.tls_ca) else {
            return Ok(None);
        };
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|error| format!("reading {}: {error}", path.display()))
        };
        Ok(Some(Tls::from_pem(read(cert)?, read(key)?, read(ca)?)))
    }
}

impl Tls {
    /// From PEM: a certificate, its key, and the CA's certificate.
    pub fn from_pem(cert: impl AsRef<[u8]>, key: impl AsRef<[u8]>, ca: impl AsRef<[u8]>) -> Self {
        Self {
            identity: Identity::from_pem(cert, key),
            ca: Certificate::from_pem(ca),
        }
    }

    /// How a service serves: with its certificate, requiring one from the
    /// CA of every caller.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
            .timeout(HANDSHAKE_LIMIT)
    }

    /// How a caller connects to the replicas of `service`: presenting its
    /// certificate, and accepting only one from the CA naming `service`.
    pub fn client(&self, service: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
            .domain_name(service)
    }
}

/// Lets only `callers` (names in the caller's certificate) call the
/// service's methods; health, reflection and `/metrics` are left to the
/// handshake, which took any certificate from the CA.
#[derive(Debug, Clone, Copy)]
pub struct CallersOnlyLayer {
    /// The service's name, for the refusal.
    pub service: &'static str,
    /// Who may call it.
    pub callers: &'static [&'static str],
}

impl<S> tower::Layer<S> for CallersOnlyLayer {
    type Service = CallersOnly<S>;

    fn layer(&self, inner: S) -> CallersOnly<S> {
        CallersOnly { inner, rule: *self }
    }
}

/// See [`CallersOnlyLayer`].
#[derive(Debug, Clone)]
pub struct CallersOnly<S> {
    inner: S,
    rule: CallersOnlyLayer,
}

impl<S, B> tower::Service<http::Request<B>> for CallersOnly<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match self.rule.refusal(&request) {
            None => Either::Left(self.inner.call(request)),
            Some(status) => Either::Right(ready(Ok(status.into_http()))),
        }
    }
}

/// Paths any certificate from the CA may call.
const OPEN_TO_THE_CA: [&str; 4] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/metrics",
];

impl CallersOnlyLayer {
    /// Why `request` may not go on, if it may not.
    fn refusal<B>(&self, request: &http::Request<B>) -> Option<tonic::Status> {
        let path = request.uri().path();
        if OPEN_TO_THE_CA.iter().any(|open| path.starts_with(open)) {
            return None;
        }
        let names = caller_names(request);
        if names.iter().any(|name| self.callers.contains(&name.as_str())) {
            return None;
        }
        Some(tonic::Status::permission_denied(format!(
            "{} answers only {}; this caller's certificate names {}",
            self.service,
            self.callers.join(" and "),
            if names.is_empty() {
                "nothing".to_owned()
            } else {
                names.join(", ")
            }
        )))
    }
}

/// The DNS names in the certificate the caller presented.
fn caller_names<B>(request: &http::Request<B>) -> Vec<String> {
    let Some(certs) = request
        .extensions()
        .get::<TlsConnectInfo<tonic::transport::server::TcpConnectInfo>>()
        .and_then(TlsConnectInfo::peer_certs)
    else {
        return Vec::new();
    };
    let Some(Ok(leaf)) = certs.first().map(webpki::EndEntityCert::try_from) else {
        return Vec::new();
    };
    leaf.valid_dns_names().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        tls: TlsArgs,
    }

    /// All three flags or none: a part given some of them refuses to
    /// start, naming what is missing, rather than running in plaintext.
    #[test]
    fn the_tls_flags_come_all_three_or_none() {
        let parse =
            |args: &[&str]| Flags::try_parse_from(std::iter::once("part").chain(args.iter().copied()));
        let all = parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem"]).unwrap();
        assert!(all.tls.tls_cert.is_some() && all.tls.tls_key.is_some() && all.tls.tls_ca.is_some());
        assert!(parse(&[]).unwrap().tls.tls_cert.is_none());
        for (given, missing) in [
            (&["--tls-cert", "c.pem"][..], "--tls-key"),
            (&["--tls-cert", "c.pem", "--tls-key", "k.pem"], "--tls-ca"),
            (&["--tls-key", "k.pem"], "--tls-cert"),
            (&["--tls-ca", "ca.pem"], "--tls-cert"),
        ] {
            let refused = parse(given).unwrap_err().to_string();
            assert!(refused.contains(missing), "{given:?}: {refused}");
        }
    }
}
