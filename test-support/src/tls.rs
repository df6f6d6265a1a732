//! A deployment's certificates for tests of mutual TLS, made by the
//! launcher's own `stack certs` in a temporary folder.

use dishpatch::tls::{ServeTlsArgs, Tls, TlsArgs};
use stack::certs::{PartFiles, files, make};
use std::net::SocketAddr;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// A channel to `addr` over TLS as `tls` says, connecting on first use.
pub fn channel(addr: SocketAddr, tls: ClientTlsConfig) -> Channel {
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("a valid URL")
        .tls_config(tls)
        .expect("a usable TLS configuration")
        .connect_lazy()
}

/// A CA with a certificate for each part of the stack.
#[derive(Debug)]
pub struct TestCerts {
    folder: tempfile::TempDir,
}

impl TestCerts {
    /// A new CA, and certificates for the edge and every service.
    pub fn new() -> Self {
        let folder = tempfile::tempdir().expect("a temporary folder");
        make(
            folder.path(),
            &["edge", "restaurant-svc", "order-svc", "notify-svc"],
        )
        .expect("making certificates");
        Self { folder }
    }

    /// The files of `name`'s certificate, made if it has none yet.
    pub fn files(&self, name: &str) -> PartFiles {
        make(self.folder.path(), &[name]).expect("making a certificate");
        files(self.folder.path(), name)
    }

    /// The TLS flags of a part named `name`.
    pub fn args(&self, name: &str) -> TlsArgs {
        self.files(name).tls_args()
    }

    /// The TLS flags of the service named `name`.
    pub fn serve_args(&self, name: &str) -> ServeTlsArgs {
        self.args(name).into()
    }

    /// `name`'s certificate and the CA, loaded.
    pub fn tls(&self, name: &str) -> Tls {
        self.args(name)
            .load()
            .expect("reading certificates")
            .expect("TLS is on")
    }
}

impl Default for TestCerts {
    fn default() -> Self {
        Self::new()
    }
}
