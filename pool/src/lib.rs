//! A pool of replicas of one service, balanced per request.
//!
//! Each replica has its own channel ([`replica`]); a prober per replica
//! ([`prober`]) and the outcome of every call ([`endpoint`]) move it in and
//! out of rotation; a request goes to the next replica in rotation
//! ([`rotation`]: round-robin or weighted round-robin, read without a lock
//! from a snapshot swapped in when a replica joins or leaves), or to
//! tower's power-of-two-choices balancer over peak-EWMA load, fed the same
//! joins and leaves as `discover::Change`s. The pool is itself a tower
//! service, so the generated tonic clients run over it; retries happen
//! above it, per typed call ([`retry`]).
//!
//! tonic's own `balance_channel` does not fit: it is p2c over connections
//! whose load is always 0 (tonic#1231), and tower's balancer never brings
//! back an endpoint it dropped; here only probes decide who is in.

mod endpoint;
mod prober;
mod replica;
mod retry;
mod rotation;

pub use endpoint::had_no_replica;
pub use prober::ProbeSettings;
pub use replica::Thresholds;
pub use retry::CallKind;

use arc_swap::ArcSwap;
use endpoint::{ReplicaEndpoint, no_healthy_replica};
use futures_util::future::BoxFuture;
use replica::{Observation, Replica};
use rotation::Rotation;
use std::{
    convert::Infallible,
    str::FromStr,
    sync::{Arc, atomic::AtomicUsize},
    task::{Context, Poll},
    time::Duration,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tower::{
    BoxError, Service, ServiceExt,
    balance::p2c::Balance,
    buffer::Buffer,
    discover::Change,
    load::{CompleteOnResponse, PeakEwma},
    retry::budget::TpsBudget,
    util::BoxCloneSyncService,
};

/// How a pool picks the replica for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Each healthy replica in turn: two replicas alternate exactly.
    RoundRobin,
    /// tower's power of two choices over peak-EWMA latency.
    P2c,
    /// Each healthy replica in turn, as often as its weight.
    Weighted,
}

impl Strategy {
    /// Every strategy's name, as [`FromStr`] reads it.
    pub const NAMES: [&'static str; 3] = ["round-robin", "p2c", "weighted"];
}

impl FromStr for Strategy {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "round-robin" => Ok(Self::RoundRobin),
            "p2c" => Ok(Self::P2c),
            "weighted" => Ok(Self::Weighted),
            other => Err(format!(
                "{other:?} is not a balancing strategy: use one of {}",
                Self::NAMES.join(", ")
            )),
        }
    }
}

/// A replica's address, and its weight for weighted round-robin:
/// `host:port` or `host:port=weight` (an `http://` in front is allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSpec {
    /// `host:port`.
    pub addr: String,
    /// Share of requests under [`Strategy::Weighted`], 1 to 100.
    pub weight: u32,
}

impl FromStr for ReplicaSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let (addr, weight) = match spec.trim().split_once('=') {
            Some((addr, weight)) => {
                let weight = weight
                    .parse()
                    .ok()
                    .filter(|weight| (1..=100).contains(weight))
                    .ok_or_else(|| format!("weight in {spec:?} must be a whole number from 1 to 100"))?;
                (addr, weight)
            }
            None => (spec.trim(), 1),
        };
        let addr = addr.strip_prefix("http://").unwrap_or(addr);
        let has_port = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !has_port {
            return Err(format!("replica {spec:?} must be host:port (optionally =weight)"));
        }
        Ok(Self {
            addr: addr.to_owned(),
            weight,
        })
    }
}

/// How a pool balances and probes.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// How a replica is picked.
    pub strategy: Strategy,
    /// Probe results needed to join or leave.
    pub thresholds: Thresholds,
    /// How often and how patiently to probe.
    pub probe: ProbeSettings,
}

/// What the pool knows of one replica.
#[derive(Debug, Clone)]
pub struct ReplicaState {
    /// `host:port`.
    pub addr: String,
    /// Whether it is in rotation.
    pub in_rotation: bool,
    /// When it was last probed, and what that found.
    pub last_probe: Option<(std::time::SystemTime, String)>,
    /// Failed probes or calls since the last success.
    pub consecutive_failures: u32,
    /// Why it last left rotation.
    pub last_error: Option<String>,
    /// Calls it has answered through this edge.
    pub requests_served: u64,
}

type P2cEndpoint = PeakEwma<ReplicaEndpoint>;
type EndpointChange = Result<Change<usize, P2cEndpoint>, Infallible>;

/// tower's p2c balancer behind a buffer, and the channel of joins and
/// leaves that feeds it.
#[derive(Debug)]
struct P2c {
    balancer: BoxCloneSyncService<http::Request<Body>, http::Response<Body>, BoxError>,
    changes: mpsc::UnboundedSender<EndpointChange>,
}

/// What every clone of a pool shares.
#[derive(Debug)]
pub(crate) struct Shared {
    service: &'static str,
    health_name: &'static str,
    replicas: Vec<Arc<Replica>>,
    settings: PoolSettings,
    rotation: ArcSwap<Rotation>,
    /// Held while the rotation is rebuilt.
    rebuilding: std::sync::Mutex<()>,
    cursor: AtomicUsize,
    p2c: Option<P2c>,
    retry_budget: TpsBudget,
    /// True once the first probes have answered (a replica joined, or every
    /// replica was probed): before that, an empty rotation means "not known
    /// yet", not "all down".
    settled: tokio::sync::watch::Sender<bool>,
}

/// A pool of replicas of one service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReplicaPool {
    shared: Arc<Shared>,
}

impl ReplicaPool {
    /// A pool of `replicas` of `service` (a name for messages, such as
    /// `restaurant-svc`), whose health is probed under `health_name` (its
    /// gRPC service name). No replica is in rotation until probed: call
    /// [`ReplicaPool::spawn_probers`]. Must run inside a tokio runtime.
    pub fn new(
        service: &'static str,
        health_name: &'static str,
        replicas: &[ReplicaSpec],
        settings: PoolSettings,
    ) -> Result<Self, String> {
        if replicas.is_empty() {
            return Err(format!("{service} needs at least one replica address"));
        }
        let replicas = replicas
            .iter()
            .map(|spec| {
                Replica::new(
                    &spec.addr,
                    spec.weight,
                    settings.probe.timeout,
                    settings.probe.interval,
                )
                .map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let p2c = (settings.strategy == Strategy::P2c).then(|| {
            let (changes, discovered) = mpsc::unbounded_channel();
            let balance = Balance::new(tokio_stream::wrappers::UnboundedReceiverStream::new(discovered));
            P2c {
                balancer: BoxCloneSyncService::new(Buffer::new(balance, 1024)),
                changes,
            }
        });
        Ok(Self {
            shared: Arc::new(Shared {
                service,
                health_name,
                replicas,
                settings,
                rotation: ArcSwap::default(),
                rebuilding: std::sync::Mutex::new(()),
                cursor: AtomicUsize::new(0),
                p2c,
                // Retries may add 20% to recent calls, plus 10 a second.
                retry_budget: TpsBudget::new(Duration::from_secs(10), 10, 0.2),
                settled: tokio::sync::watch::Sender::new(false),
            }),
        })
    }

    /// Starts one prober per replica; they stop when `stop` is cancelled.
    pub fn spawn_probers(&self, stop: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        self.shared
            .replicas
            .iter()
            .map(|replica| {
                let probe = prober::probe(
                    self.clone(),
                    replica.clone(),
                    self.shared.settings.probe,
                    stop.clone(),
                );
                tokio::spawn(probe)
            })
            .collect()
    }

    /// The service's name, for messages.
    pub fn service(&self) -> &'static str {
        self.shared.service
    }

    /// Whether any replica is in rotation.
    pub fn has_healthy_replica(&self) -> bool {
        !self.shared.rotation.load().is_empty()
    }

    /// Every replica's state.
    pub fn replica_states(&self) -> Vec<ReplicaState> {
        self.shared
            .replicas
            .iter()
            .map(|replica| {
                let health = replica.health();
                ReplicaState {
                    addr: replica.addr().to_owned(),
                    in_rotation: health.in_rotation,
                    last_probe: health.last_probe,
                    consecutive_failures: health.consecutive_failures,
                    last_error: health.last_error,
                    requests_served: replica.served(),
                }
            })
            .collect()
    }

    /// Records what a probe or call found about `replica`, and updates the
    /// rotation when that moves it in or out.
    fn observe(&self, replica: &Arc<Replica>, observation: Observation) {
        self.shared.observe(replica, observation);
    }
}

impl Shared {
    fn observe(self: &Arc<Self>, replica: &Arc<Replica>, observation: Observation) {
        let change = replica.observe(&observation, self.settings.thresholds);
        if !*self.settled.borrow()
            && (change == Some(true) || self.replicas.iter().all(|r| r.health().last_probe.is_some()))
        {
            self.settled.send_replace(true);
        }
        let Some(in_rotation) = change else {
            return;
        };
        // Rebuild under the lock, reading every replica's state inside it,
        // so that concurrent changes cannot leave a stale rotation. Changes
        // are rare; calls read the rotation without this lock.
        let rebuilding = self.rebuilding.lock().expect("rebuild lock");
        let healthy: Vec<_> = self
            .replicas
            .iter()
            .filter(|r| r.health().in_rotation)
            .cloned()
            .collect();
        self.rotation.store(Arc::new(match self.settings.strategy {
            Strategy::Weighted => Rotation::weighted(healthy),
            Strategy::RoundRobin | Strategy::P2c => Rotation::round_robin(healthy),
        }));
        if let Some(p2c) = &self.p2c {
            let key = self
                .replicas
                .iter()
                .position(|r| Arc::ptr_eq(r, replica))
                .expect("a replica of this pool");
            let change = if in_rotation {
                let endpoint = ReplicaEndpoint {
                    replica: replica.clone(),
                    shared: self.clone(),
                };
                let decay = Duration::from_secs(10).as_nanos() as f64;
                Change::Insert(
                    key,
                    PeakEwma::new(
                        endpoint,
                        Duration::from_millis(5),
                        decay,
                        CompleteOnResponse::default(),
                    ),
                )
            } else {
                Change::Remove(key)
            };
            // The balancer lives as long as the pool: sending cannot fail.
            let _ = p2c.changes.send(Ok(change));
        }
        drop(rebuilding);
        if in_rotation {
            tracing::info!(
                service = self.service,
                replica = replica.addr(),
                "replica joined rotation"
            );
        } else {
            tracing::warn!(
                service = self.service,
                replica = replica.addr(),
                ?observation,
                "replica left rotation"
            );
        }
    }
}

impl Service<http::Request<Body>> for ReplicaPool {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Always ready: a call with no replica in rotation fails at once
        // (503, not a wait until the deadline), and each replica's channel
        // is awaited per call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let rotation = self.shared.rotation.load();
        if let Some(p2c) = self.shared.p2c.as_ref().filter(|_| !rotation.is_empty()) {
            return Box::pin(p2c.balancer.clone().oneshot(request));
        }
        match rotation.pick(&self.shared.cursor) {
            Some(replica) => ReplicaEndpoint {
                replica: replica.clone(),
                shared: self.shared.clone(),
            }
            .call(request),
            None => {
                let status = no_healthy_replica(self.shared.service);
                Box::pin(async move { Err(status.into()) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replica_specs() {
        assert_eq!(
            "127.0.0.1:50051".parse(),
            Ok(ReplicaSpec {
                addr: "127.0.0.1:50051".into(),
                weight: 1
            })
        );
        assert_eq!(
            " restaurants.internal:50051=3".parse(),
            Ok(ReplicaSpec {
                addr: "restaurants.internal:50051".into(),
                weight: 3
            })
        );
        for bad in [
            "",
            "localhost",
            ":50051",
            "host:port",
            "host:1=0",
            "host:1=many",
            "host:1=101",
        ] {
            assert!(bad.parse::<ReplicaSpec>().is_err(), "{bad:?}");
        }
    }
}
