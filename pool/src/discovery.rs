//! Following a DNS name: every address it resolves to is a replica. The
//! name is resolved again every [`PoolSettings::dns_interval`], and at once
//! when every replica found under it has failed; replicas join and retire
//! as the records change. A name that stops resolving (an error, or no
//! records) keeps its last good set: a DNS outage must not empty a pool
//! whose replicas still answer.
//!
//! [`PoolSettings::dns_interval`]: crate::PoolSettings::dns_interval

use crate::{Shared, Target, replica::Replica};
use hickory_resolver::{
    Resolver, TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts},
    net::runtime::TokioRuntimeProvider,
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// The least time between two resolutions that failures asked for.
const LEAST_BETWEEN_RESOLUTIONS: Duration = Duration::from_millis(500);

/// Resolves spec `source` of `pool` (a DNS name) until `stop`, handing new
/// replicas to `joined`.
pub(crate) async fn follow(
    pool: Arc<Shared>,
    source: usize,
    joined: UnboundedSender<Arc<Replica>>,
    stop: CancellationToken,
) {
    let Target::Dns { name, port, server } = pool.specs[source].target.clone() else {
        return;
    };
    let resolver = match resolver(server) {
        Ok(resolver) => resolver,
        Err(error) => {
            tracing::error!(service = pool.service, name, %error, "cannot resolve DNS names");
            pool.looked_up[source].store(true, std::sync::atomic::Ordering::Relaxed);
            pool.settle_if_all_looked_at();
            return;
        }
    };
    let mut last_failure: Option<String> = None;
    loop {
        match resolver.lookup_ip(name.as_str()).await {
            Ok(found) => {
                let mut addrs: Vec<SocketAddr> = found.iter().map(|ip| SocketAddr::new(ip, port)).collect();
                addrs.sort();
                addrs.dedup();
                if addrs.is_empty() {
                    note_failure(&pool, &name, &mut last_failure, "no addresses".into());
                } else {
                    if last_failure.take().is_some() {
                        tracing::info!(service = pool.service, name, "DNS name resolves again");
                    }
                    pool.set_replicas_of(source, &addrs, &joined);
                }
            }
            Err(error) => note_failure(&pool, &name, &mut last_failure, error.to_string()),
        }
        if !pool.looked_up[source].swap(true, std::sync::atomic::Ordering::Relaxed) {
            pool.settle_if_all_looked_at();
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pool.settings.dns_interval) => {}
            () = pool.resolve_again[source].notified() => {
                tracing::info!(service = pool.service, name, "every replica of the name failed; resolving it again");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(LEAST_BETWEEN_RESOLUTIONS) => {}
                }
            }
        }
    }
}

/// Logs a failed resolution once, until the name resolves again.
fn note_failure(pool: &Shared, name: &str, last: &mut Option<String>, error: String) {
    if last.as_ref() != Some(&error) {
        tracing::warn!(service = pool.service, name, %error, "DNS name does not resolve; keeping its last replicas");
    }
    *last = Some(error);
}

/// A resolver asking `server`, or the system's name servers
/// (`/etc/resolv.conf`, with `/etc/hosts` first). It keeps no cache: every
/// resolution asks, so a changed record is seen within an interval.
fn resolver(server: Option<SocketAddr>) -> Result<TokioResolver, String> {
    let mut builder = match server {
        Some(server) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = server.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = server.port();
            let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
            name_server.connections = vec![udp, tcp];
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![name_server]),
                TokioRuntimeProvider::default(),
            )
            .with_options(ResolverOpts::default())
        }
        None => Resolver::builder_tokio().map_err(|error| error.to_string())?,
    };
    let options = builder.options_mut();
    options.cache_size = 0;
    options.timeout = Duration::from_secs(2);
    builder.build().map_err(|error| error.to_string())
}
