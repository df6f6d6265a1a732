//! Replicas for the pool's tests, served in this process over in-memory
//! connections (tokio's duplex streams), so a test drives real tonic
//! clients and servers, health probes included, on paused time.
//!
//! A replica serves `grpc.health.v1.Health`: probes ask about
//! [`HEALTH_NAME`]; the calls the tests make through the pool are `Check`s
//! of [`WORK`], answered as the replica's [`Behaviour`] says.

use crate::{PoolSettings, ReplicaPool, ReplicaSpec, replica::Connector};
use dishpatch::call::CallContext;
use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, StreamExt, wrappers::UnboundedReceiverStream};
use tonic::{
    Code, Request, Response, Status,
    transport::{Endpoint, Server},
};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse,
    health_check_response::ServingStatus,
    health_client::HealthClient,
    health_server::{Health, HealthServer},
};

/// The service name the pool's probes ask about.
pub(crate) const HEALTH_NAME: &str = "test.v1.Service";
/// The service name of the calls tests make.
pub(crate) const WORK: &str = "work";

/// How a replica answers calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// At once, OK.
    Answer,
    /// After this long, OK.
    Slow(Duration),
    /// At once, with this code (and the dependency marker if it says so).
    Fail(Code, bool),
    /// Never.
    Hang,
}

/// One in-process replica.
#[derive(Debug)]
pub(crate) struct TestReplica {
    pub(crate) addr: String,
    behaviour: Mutex<Behaviour>,
    serving: watch::Sender<ServingStatus>,
    /// Whether it serves Watch (or only Check).
    watch: bool,
    /// Whether probes and calls get no answer at all (SIGSTOP).
    frozen: AtomicBool,
    /// Whether a connection can be made.
    reachable: AtomicBool,
    /// The open connections, each relayed by a task: aborting it closes
    /// the connection at both ends, as a crash would.
    links: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Calls that reached it, and how many of them completed.
    pub(crate) calls: AtomicUsize,
    pub(crate) completed: AtomicUsize,
    connections: mpsc::UnboundedSender<Result<tokio::io::DuplexStream, std::io::Error>>,
}

impl TestReplica {
    pub(crate) fn behave(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub(crate) fn set_serving(&self, status: ServingStatus) {
        self.serving.send_replace(status);
    }

    pub(crate) fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, SeqCst);
    }

    /// Crashes it: its connections close and new ones are refused.
    pub(crate) fn kill(&self) {
        self.reachable.store(false, SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Starts it again after [`Self::kill`].
    pub(crate) fn revive(&self) {
        self.reachable.store(true, SeqCst);
    }
}

/// The replicas of a test, by address.
#[derive(Debug, Default, Clone)]
pub(crate) struct TestNet {
    replicas: Arc<Mutex<HashMap<String, Arc<TestReplica>>>>,
}

impl TestNet {
    /// Starts a replica at `addr`, SERVING and answering OK.
    pub(crate) fn replica(&self, addr: &str) -> Arc<TestReplica> {
        self.start(addr, true)
    }

    /// Starts a replica at `addr` that serves Check but not Watch.
    pub(crate) fn check_only_replica(&self, addr: &str) -> Arc<TestReplica> {
        self.start(addr, false)
    }

    fn start(&self, addr: &str, watch: bool) -> Arc<TestReplica> {
        let (connections, incoming) = mpsc::unbounded_channel();
        let replica = Arc::new(TestReplica {
            addr: addr.to_owned(),
            behaviour: Mutex::new(Behaviour::Answer),
            serving: watch::Sender::new(ServingStatus::Serving),
            watch,
            frozen: AtomicBool::new(false),
            reachable: AtomicBool::new(true),
            links: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            connections,
        });
        tokio::spawn(
            Server::builder()
                .add_service(HealthServer::new(Served(replica.clone())))
                .serve_with_incoming(UnboundedReceiverStream::new(incoming)),
        );
        self.replicas
            .lock()
            .unwrap()
            .insert(addr.to_owned(), replica.clone());
        replica
    }

    /// Channels to this net's replicas.
    pub(crate) fn connector(&self) -> Connector {
        let net = self.clone();
        Arc::new(move |addr, _| {
            let (net, addr) = (net.clone(), addr.to_owned());
            let endpoint =
                Endpoint::from_shared(format!("http://{addr}")).map_err(|error| error.to_string())?;
            Ok(
                endpoint.connect_with_connector_lazy(tower::service_fn(move |_: http::Uri| {
                    let replica = net.replicas.lock().unwrap().get(&addr).cloned();
                    async move {
                        let refused = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
                        let replica = replica.ok_or_else(refused)?;
                        if !replica.reachable.load(SeqCst) {
                            return Err(refused());
                        }
                        let (client, mut client_link) = tokio::io::duplex(64 * 1024);
                        let (mut server_link, server) = tokio::io::duplex(64 * 1024);
                        let link = tokio::spawn(async move {
                            tokio::io::copy_bidirectional(&mut client_link, &mut server_link)
                                .await
                                .ok();
                        });
                        replica.links.lock().unwrap().push(link.abort_handle());
                        replica.connections.send(Ok(server)).map_err(|_| refused())?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(client))
                    }
                })),
            )
        })
    }

    /// A pool over `specs` (`addr` or `addr=weight`) of this net.
    pub(crate) fn pool(&self, specs: &[&str], settings: PoolSettings) -> ReplicaPool {
        let specs: Vec<ReplicaSpec> = specs.iter().map(|spec| spec.parse().unwrap()).collect();
        ReplicaPool::with_connector("test-svc", HEALTH_NAME, &specs, settings, self.connector()).unwrap()
    }
}

/// A replica's health service, which also answers the tests' calls.
struct Served(Arc<TestReplica>);

#[tonic::async_trait]
impl Health for Served {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let replica = &self.0;
        if replica.frozen.load(SeqCst) {
            std::future::pending::<()>().await;
        }
        if request.get_ref().service != WORK {
            return Ok(Response::new(HealthCheckResponse {
                status: (*replica.serving.borrow()).into(),
            }));
        }
        replica.calls.fetch_add(1, SeqCst);
        let behaviour = replica.behaviour.lock().unwrap().clone();
        let answer = match behaviour {
            Behaviour::Answer => Ok(()),
            Behaviour::Slow(delay) => {
                tokio::time::sleep(delay).await;
                Ok(())
            }
            Behaviour::Fail(code, dependency) => {
                let status = Status::new(code, format!("{} fails", replica.addr));
                Err(if dependency {
                    dishpatch::wire::dependency_unavailable(status, "a dependency")
                } else {
                    status
                })
            }
            Behaviour::Hang => std::future::pending().await,
        };
        replica.completed.fetch_add(1, SeqCst);
        answer.map(|()| {
            Response::new(HealthCheckResponse {
                status: ServingStatus::Serving.into(),
            })
        })
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

    async fn watch(&self, _: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let replica = self.0.clone();
        if !replica.watch {
            return Err(Status::unimplemented("Watch is not served here"));
        }
        if replica.frozen.load(SeqCst) {
            std::future::pending::<()>().await;
        }
        let updates = tokio_stream::wrappers::WatchStream::new(replica.serving.subscribe()).map(|status| {
            Ok(HealthCheckResponse {
                status: status.into(),
            })
        });
        Ok(Response::new(Box::pin(updates)))
    }
}

/// Settings for tests: probes every second, rise 2, fall 2, no slow start.
pub(crate) fn settings() -> PoolSettings {
    let mut settings = PoolSettings::default();
    settings.probe.interval = Duration::from_secs(1);
    settings.probe.timeout = Duration::from_millis(500);
    settings.slow_start = Duration::ZERO;
    settings
}

/// A work call through `pool` of `kind`, within `deadline` from now: the
/// address of the replica that answered, or the failure.
pub(crate) async fn call(
    pool: &ReplicaPool,
    kind: crate::CallKind,
    deadline: Duration,
) -> Result<String, crate::CallError> {
    let context = CallContext::new(None, Some(tokio::time::Instant::now() + deadline));
    let request = HealthCheckRequest { service: WORK.into() };
    pool.call(&context, kind, request, |channel, request| async move {
        HealthClient::new(channel).check(request).await
    })
    .await
    .map(|answered| answered.served_by.to_str().unwrap().to_owned())
}

/// Waits (on paused time, at most a minute of it) until `check` holds.
pub(crate) async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

/// A pool whose background work runs until it is dropped.
#[derive(Debug)]
pub(crate) struct Running {
    pool: ReplicaPool,
    stop: tokio_util::sync::CancellationToken,
}

impl std::ops::Deref for Running {
    type Target = ReplicaPool;

    fn deref(&self) -> &ReplicaPool {
        &self.pool
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestNet {
    /// A running pool over `specs` of this net, once every replica is in
    /// rotation.
    pub(crate) async fn running_pool(&self, specs: &[&str], settings: PoolSettings) -> Running {
        let pool = self.pool(specs, settings);
        let stop = tokio_util::sync::CancellationToken::new();
        pool.spawn(stop.clone());
        until("every replica in rotation", || {
            pool.state().in_rotation == specs.len()
        })
        .await;
        Running { pool, stop }
    }
}

/// Whether `addr` is in `pool`'s rotation.
pub(crate) fn in_rotation(pool: &ReplicaPool, addr: &str) -> bool {
    pool.replica_states()
        .iter()
        .any(|replica| replica.addr == addr && replica.out_of_rotation.is_none())
}

/// Why `addr` is out of `pool`'s rotation.
pub(crate) fn out_of_rotation(pool: &ReplicaPool, addr: &str) -> Option<crate::OutOfRotation> {
    pool.replica_states()
        .iter()
        .find(|replica| replica.addr == addr)
        .and_then(|replica| replica.out_of_rotation)
}
