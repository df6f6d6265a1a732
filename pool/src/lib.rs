//! A pool of replicas of one gRPC service, balanced per call.
//!
//! Build one from replica specs ([`ReplicaSpec`]: addresses, or DNS names
//! whose every address is a replica) and [`PoolSettings`]; run its
//! background work with [`ReplicaPool::spawn`]; call through it with
//! [`ReplicaPool::call`]; read its replicas' states with
//! [`ReplicaPool::replica_states`]. It knows nothing of HTTP.
//!
//! - [`spec`] and [`discovery`]: where the replicas are, and following DNS
//!   names as their records change.
//! - [`prober`]: a replica's `grpc.health.v1` Watch (or Check polling),
//!   through rise/fall thresholds ([`health`]).
//! - [`rotation`]: the replicas in rotation, as a snapshot read without a
//!   lock, and the pickers: round-robin, weighted, p2c, slow start.
//! - [`call`]: a typed call, with per-try timeouts, hedged reads, retries
//!   on a budget, and ejection of a replica a call finds misbehaving.
//! - [`latency`]: recent latency per replica and per pool, behind the
//!   per-try timeouts, hedging and p2c.
//!
//! Each replica has its own tonic channel: HTTP/2 multiplexes calls on one
//! connection, so balancing is per call, never per connection. tonic's own
//! `balance_channel` does not fit: it is p2c over connections whose load is
//! always 0 (tonic#1231), tower's balancer never brings back an endpoint it
//! dropped, and neither can send a retry or a hedge to a replica other than
//! the one that failed; here probes decide who is in, and the call decides
//! where each attempt goes.

mod call;
mod channel;
mod discovery;
mod health;
mod latency;
mod metrics;
mod prober;
mod replica;
mod rotation;
mod settings;
mod span;
mod spec;
#[cfg(test)]
mod tests;

pub use call::{Answered, CallError, CallKind, Outcome};
pub use channel::ReplicaChannel;
pub use health::OutOfRotation;
pub use metrics::PoolMetrics;
pub use settings::{Ejection, Panic, PoolSettings, ProbeSettings, Strategy, TryTimeout};
pub use spec::{ReplicaSpec, Target};

use arc_swap::ArcSwap;
use dishpatch::tls::Tls;
use health::Observation;
use latency::RecentLatency;
use replica::{Connector, Replica};
use rotation::{Rotation, Tried};
use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
    },
    time::SystemTime,
};
use tokio::{sync::Notify, task::JoinHandle, time::Instant};
use tokio_util::sync::CancellationToken;

/// What the pool knows of one replica.
#[derive(Debug, Clone)]
pub struct ReplicaState {
    /// `host:port`.
    pub addr: String,
    /// Why it is out of rotation, or `None` while it is in.
    pub out_of_rotation: Option<OutOfRotation>,
    /// When it was last probed, and what that found.
    pub last_probe: Option<(SystemTime, String)>,
    /// Failed probes or calls since the last success.
    pub consecutive_failures: u32,
    /// Why it last left rotation.
    pub last_error: Option<String>,
    /// How often calls ejected it.
    pub ejections: u64,
    /// Calls it has answered through this pool.
    pub requests_served: u64,
}

/// The pool as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// Replicas in rotation.
    pub in_rotation: usize,
    /// Replicas known (configured or resolved).
    pub known: usize,
    /// Whether fewer than the panic threshold's share are in rotation.
    pub panicking: bool,
}

/// A pool of replicas of one service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReplicaPool {
    shared: Arc<Shared>,
}

/// What every clone of a pool shares.
pub(crate) struct Shared {
    service: &'static str,
    health_name: &'static str,
    settings: PoolSettings,
    specs: Vec<ReplicaSpec>,
    connector: Connector,
    /// Every replica known, in rotation or not.
    replicas: ArcSwap<Vec<Arc<Replica>>>,
    /// The replicas in rotation, in picking order.
    rotation: ArcSwap<Rotation>,
    /// Held while the replica set or the rotation is rebuilt.
    rebuilding: Mutex<()>,
    /// The turn counter of round-robin pickers.
    cursor: AtomicUsize,
    retry_budget: tower::retry::budget::TpsBudget,
    /// Latency of every answer through the pool (hedging's p95).
    latency: RecentLatency,
    /// Whether each spec has been looked up once (addresses at once, DNS
    /// names after their first resolution).
    looked_up: Vec<AtomicBool>,
    /// Asks a spec's DNS resolution to run again at once.
    resolve_again: Vec<Notify>,
    /// True once every replica was probed (or one joined) after every spec
    /// was looked up: before that, an empty rotation means "not known
    /// yet", not "all down".
    settled: tokio::sync::watch::Sender<bool>,
    panicking: AtomicBool,
    created: Instant,
    counts: metrics::PoolCounts,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("service", &self.service)
            .field("replicas", &self.replicas.load().len())
            .field("in_rotation", &self.rotation.load().len())
            .finish_non_exhaustive()
    }
}

impl ReplicaPool {
    /// A pool of the replicas `specs` name of `service` (a name for
    /// messages, such as `restaurant-svc`), whose health is probed under
    /// `health_name` (its gRPC service name). No replica is in rotation
    /// until probed: run [`ReplicaPool::spawn`]. Must run inside a tokio
    /// runtime. With `tls`, calls go over mutual TLS, to replicas whose
    /// certificates name `service`.
    pub fn new(
        service: &'static str,
        health_name: &'static str,
        specs: &[ReplicaSpec],
        settings: PoolSettings,
        tls: Option<&Tls>,
    ) -> Result<Self, String> {
        let connector = replica::tcp(tls.map(|tls| tls.client(service)));
        Self::with_connector(service, health_name, specs, settings, connector)
    }

    pub(crate) fn with_connector(
        service: &'static str,
        health_name: &'static str,
        specs: &[ReplicaSpec],
        settings: PoolSettings,
        connector: Connector,
    ) -> Result<Self, String> {
        if specs.is_empty() {
            return Err(format!("{service} needs at least one replica address"));
        }
        let mut replicas = Vec::new();
        for (source, spec) in specs.iter().enumerate() {
            if let Target::Addr(addr) = &spec.target {
                replicas.push(Arc::new(Replica::new(
                    addr,
                    spec.weight,
                    source,
                    &connector,
                    &settings.probe,
                )?));
            }
        }
        let shared = Shared {
            service,
            health_name,
            settings,
            specs: specs.to_vec(),
            connector,
            replicas: ArcSwap::from_pointee(replicas),
            rotation: ArcSwap::default(),
            rebuilding: Mutex::new(()),
            cursor: AtomicUsize::new(0),
            // Retries and hedges may add 20% to recent calls, plus 10 a second.
            retry_budget: tower::retry::budget::TpsBudget::new(std::time::Duration::from_secs(10), 10, 0.2),
            latency: RecentLatency::new(),
            looked_up: specs
                .iter()
                .map(|spec| AtomicBool::new(matches!(spec.target, Target::Addr(_))))
                .collect(),
            resolve_again: specs.iter().map(|_| Notify::new()).collect(),
            settled: tokio::sync::watch::Sender::new(false),
            panicking: AtomicBool::new(false),
            created: Instant::now(),
            counts: metrics::PoolCounts::default(),
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// Starts the pool's background work: a prober per replica, and the
    /// resolution of every DNS name among its specs. It all stops when
    /// `stop` is cancelled; the handle ends once it has.
    pub fn spawn(&self, stop: CancellationToken) -> JoinHandle<()> {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            let (joined, mut new_replicas) = tokio::sync::mpsc::unbounded_channel();
            for replica in shared.replicas.load().iter() {
                tasks.spawn(prober::probe(shared.clone(), replica.clone(), stop.clone()));
            }
            for source in 0..shared.specs.len() {
                if let Target::Dns { .. } = shared.specs[source].target {
                    let follow = discovery::follow(shared.clone(), source, joined.clone(), stop.clone());
                    tasks.spawn(follow);
                }
            }
            drop(joined);
            loop {
                tokio::select! {
                    Some(replica) = new_replicas.recv() => {
                        tasks.spawn(prober::probe(shared.clone(), replica, stop.clone()));
                    }
                    // Probers of retired replicas end on their own.
                    Some(_) = tasks.join_next() => {}
                    () = stop.cancelled() => break,
                }
            }
            while tasks.join_next().await.is_some() {}
        })
    }

    /// The service's name, for messages.
    pub fn service(&self) -> &'static str {
        self.shared.service
    }

    /// Whether any replica is in rotation.
    pub fn has_healthy_replica(&self) -> bool {
        !self.shared.rotation.load().is_empty()
    }

    /// The pool as a whole.
    pub fn state(&self) -> PoolState {
        PoolState {
            in_rotation: self.shared.rotation.load().len(),
            known: self.shared.replicas.load().len(),
            panicking: self.shared.panicking.load(Relaxed),
        }
    }

    /// Every replica's state.
    pub fn replica_states(&self) -> Vec<ReplicaState> {
        self.shared
            .replicas
            .load()
            .iter()
            .map(|replica| {
                let health = replica.health();
                ReplicaState {
                    addr: replica.addr().to_owned(),
                    out_of_rotation: health.out,
                    last_probe: health.last_probe,
                    consecutive_failures: health.consecutive_failures,
                    last_error: health.last_error,
                    ejections: replica.counts.ejections(),
                    requests_served: replica.served(),
                }
            })
            .collect()
    }
}

impl Shared {
    /// Records what a probe or call found about `replica`, and rebuilds the
    /// rotation when that moves it in or out.
    fn observe(&self, replica: &Arc<Replica>, observation: Observation) {
        let change = replica.observe(&observation, &self.settings.probe);
        self.changed(replica, change, &observation);
    }

    /// Ejects `replica` for being slow or erring, unless that would take
    /// more than the ejection's `max_share` of the known replicas out. The
    /// count and the ejection are one step under the rebuild lock, so
    /// replicas timing out together cannot all pass the count.
    fn eject_outlier(&self, replica: &Arc<Replica>, why: String) {
        let observation = Observation::Ejected(why);
        let change = {
            let _rebuilding = self.rebuilding.lock().expect("rebuild lock");
            let replicas = self.replicas.load();
            let staying = replicas
                .iter()
                .filter(|other| other.id() != replica.id() && other.in_rotation())
                .count();
            if (staying as f64) < replicas.len() as f64 * (1.0 - self.settings.ejection.max_share) {
                tracing::debug!(
                    service = self.service,
                    replica = replica.addr(),
                    ?observation,
                    "not ejected: too many are out"
                );
                return;
            }
            replica.observe(&observation, &self.settings.probe)
        };
        self.changed(replica, change, &observation);
    }

    /// What follows a change of `replica`'s health: it is counted; when it
    /// moved in or out of rotation, the rotation is rebuilt; then the pool
    /// settles.
    fn changed(&self, replica: &Arc<Replica>, change: Option<bool>, observation: &Observation) {
        self.counts.observed(replica, observation, change);
        if let Some(in_rotation) = change {
            self.rebuild_rotation();
            self.report_move(replica, in_rotation, observation);
        }
        // Only once the rotation holds the replica: calls waiting for the
        // pool to settle pick from the rotation as soon as it has.
        if change == Some(true) {
            self.settled.send_replace(true);
        } else {
            self.settle_if_all_looked_at();
        }
    }

    /// Logs that `replica` moved in or out of rotation; when its DNS name's
    /// every replica is out, asks for the name to be resolved again.
    fn report_move(&self, replica: &Replica, in_rotation: bool, observation: &Observation) {
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
            let source = replica.source();
            let others_of_its_name_out = self
                .replicas
                .load()
                .iter()
                .filter(|other| other.source() == source)
                .all(|other| !other.in_rotation());
            if others_of_its_name_out {
                // Every replica a DNS name gave failed: the name may point
                // elsewhere by now.
                self.resolve_again[source].notify_one();
            }
        }
    }

    /// Marks the pool settled once every spec was looked up and every
    /// replica probed.
    fn settle_if_all_looked_at(&self) {
        if *self.settled.borrow() {
            return;
        }
        let looked_up = self.looked_up.iter().all(|spec| spec.load(Relaxed));
        let probed = self
            .replicas
            .load()
            .iter()
            .all(|replica| replica.health().last_probe.is_some());
        if looked_up && probed {
            self.settled.send_replace(true);
        }
    }

    /// Waits (until `deadline` at most) for the first probes: a pool that
    /// just started answers "no healthy replica" only after looking.
    async fn wait_until_settled(&self, deadline: Instant) {
        if *self.settled.borrow() {
            return;
        }
        let mut settled = self.settled.subscribe();
        let _ = tokio::time::timeout_at(deadline, settled.wait_for(|settled| *settled)).await;
    }

    /// Rebuilds the rotation from every replica's health.
    fn rebuild_rotation(&self) {
        // Under the lock, reading every replica's state inside it, so that
        // concurrent changes cannot leave a stale rotation. Changes are
        // rare; calls read the rotation without this lock.
        let _rebuilding = self.rebuilding.lock().expect("rebuild lock");
        let replicas = self.replicas.load();
        // Replicas that join while the pool starts are its first members:
        // they share the calls from the start, with nobody to protect.
        let starting_until = self.created + self.settings.probe.interval;
        let members: Vec<_> = replicas
            .iter()
            .filter_map(|replica| {
                let health = replica.health();
                health.in_rotation().then(|| {
                    let ramp_from = health.joined_at.filter(|joined| *joined > starting_until);
                    (replica.clone(), ramp_from)
                })
            })
            .collect();
        let rotation = Rotation::new(self.settings.strategy, members, self.settings.slow_start);
        self.report_panic(rotation.len(), replicas.len());
        self.rotation.store(Arc::new(rotation));
    }

    /// Says when the share of healthy replicas falls below, or comes back
    /// above, the panic threshold.
    fn report_panic(&self, in_rotation: usize, known: usize) {
        let panicking = known > 0 && (in_rotation as f64) < self.settings.panic.threshold * known as f64;
        if self.panicking.swap(panicking, Relaxed) != panicking {
            if panicking {
                tracing::warn!(
                    service = self.service,
                    in_rotation,
                    known,
                    "fewer than {:.0}% of replicas are healthy",
                    self.settings.panic.threshold * 100.0
                );
            } else {
                tracing::info!(
                    service = self.service,
                    in_rotation,
                    known,
                    "enough replicas are healthy again"
                );
            }
        }
    }

    /// The replica for the next attempt of a call that tried `tried`: from
    /// the rotation, or in a panic (nothing in rotation), one that is out
    /// only because calls failed on it or it was not probed yet. One not
    /// tried yet, or, if `again` allows, one tried before.
    fn pick(&self, tried: &Tried, again: bool) -> Option<Arc<Replica>> {
        let rotation = self.rotation.load();
        if !rotation.is_empty() {
            return rotation.pick(&self.cursor, tried, again, Instant::now()).cloned();
        }
        let candidates = self.panic_candidates();
        let untried: Vec<&Arc<Replica>> = candidates
            .iter()
            .filter(|replica| !tried.contains(replica))
            .collect();
        let turn = self.cursor.fetch_add(1, Relaxed);
        match (untried.is_empty(), again && !candidates.is_empty()) {
            (false, _) => Some(untried[turn % untried.len()].clone()),
            (true, true) => Some(candidates[turn % candidates.len()].clone()),
            (true, false) => None,
        }
    }

    /// Whether a replica other than those in `tried` could take an attempt.
    fn has_untried(&self, tried: &Tried) -> bool {
        let rotation = self.rotation.load();
        if !rotation.is_empty() {
            return rotation.has_untried(tried);
        }
        self.panic_candidates()
            .iter()
            .any(|replica| !tried.contains(replica))
    }

    /// With nothing in rotation, the replicas panic routing may try.
    fn panic_candidates(&self) -> Vec<Arc<Replica>> {
        if !self.settings.panic.route_when_none_healthy {
            return Vec::new();
        }
        self.replicas
            .load()
            .iter()
            .filter(|replica| replica.health().worth_a_try_in_panic())
            .cloned()
            .collect()
    }

    /// Makes the replica set of spec `source` the replicas at `addrs`:
    /// those new are added (and handed to `joined`, to be probed), those
    /// gone retire.
    fn set_replicas_of(
        &self,
        source: usize,
        addrs: &[SocketAddr],
        joined: &tokio::sync::mpsc::UnboundedSender<Arc<Replica>>,
    ) {
        let rebuilding = self.rebuilding.lock().expect("rebuild lock");
        let current = self.replicas.load();
        let wanted: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        let mut next: Vec<Arc<Replica>> = Vec::with_capacity(current.len() + addrs.len());
        for replica in current.iter() {
            if replica.source() != source || wanted.iter().any(|addr| addr == replica.addr()) {
                next.push(replica.clone());
            } else {
                tracing::info!(
                    service = self.service,
                    replica = replica.addr(),
                    "replica no longer resolved; retiring it"
                );
                replica.retired.cancel();
            }
        }
        for addr in &wanted {
            if current
                .iter()
                .any(|replica| replica.source() == source && replica.addr() == addr)
            {
                continue;
            }
            let weight = self.specs[source].weight;
            match Replica::new(addr, weight, source, &self.connector, &self.settings.probe) {
                Ok(replica) => {
                    tracing::info!(service = self.service, replica = addr, "replica resolved");
                    let replica = Arc::new(replica);
                    next.push(replica.clone());
                    // The pool's task probes it, until the pool stops.
                    let _ = joined.send(replica);
                }
                Err(error) => tracing::warn!(service = self.service, %error, "resolved replica unusable"),
            }
        }
        self.replicas.store(Arc::new(next));
        drop(rebuilding);
        self.rebuild_rotation();
        self.looked_up[source].store(true, Relaxed);
        self.settle_if_all_looked_at();
    }
}
