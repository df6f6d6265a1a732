//! Probing where Watch is unimplemented: the pool polls Check, and a
//! replica that turns NOT_SERVING leaves rotation.

use dishpatch_pool::{PoolSettings, ProbeSettings, ReplicaPool, ReplicaSpec, Strategy, Thresholds};
use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};
use test_support::eventually;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse,
    health_check_response::ServingStatus,
    health_server::{Health, HealthServer},
};

/// A health service that answers Check only, as some servers do.
#[derive(Clone)]
struct CheckOnly(Arc<Mutex<ServingStatus>>);

#[tonic::async_trait]
impl Health for CheckOnly {
    async fn check(&self, _: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        let status = *self.0.lock().unwrap();
        Ok(Response::new(HealthCheckResponse {
            status: status.into(),
        }))
    }

    type WatchStream = Pin<Box<dyn futures_util::Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

    async fn watch(&self, _: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("Watch is not served here"))
    }
}

#[tokio::test]
async fn polls_check_where_watch_is_unimplemented() {
    let status = Arc::new(Mutex::new(ServingStatus::Serving));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop_server = CancellationToken::new();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(HealthServer::new(CheckOnly(status.clone())))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                stop_server.clone().cancelled_owned(),
            ),
    );

    let settings = PoolSettings {
        strategy: Strategy::RoundRobin,
        thresholds: Thresholds { rise: 2, fall: 2 },
        probe: ProbeSettings {
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(500),
        },
    };
    let spec = ReplicaSpec {
        addr: addr.to_string(),
        weight: 1,
    };
    let pool = ReplicaPool::new("check-only-svc", "check.only.v1.Service", &[spec], settings).unwrap();
    let stop = CancellationToken::new();
    let _probers = pool.spawn_probers(&stop);

    eventually(
        "Check polling to admit the replica",
        Duration::from_secs(5),
        || async { pool.has_healthy_replica().then_some(()) },
    )
    .await;
    *status.lock().unwrap() = ServingStatus::NotServing;
    eventually(
        "a NOT_SERVING Check to take it out",
        Duration::from_secs(5),
        || async { (!pool.has_healthy_replica()).then_some(()) },
    )
    .await;
    let replica = &pool.replica_states()[0];
    assert_eq!(
        replica.last_probe.as_ref().map(|(_, found)| found.as_str()),
        Some("NOT_SERVING")
    );
    *status.lock().unwrap() = ServingStatus::Serving;
    eventually(
        "two SERVING Checks to bring it back",
        Duration::from_secs(5),
        || async { pool.has_healthy_replica().then_some(()) },
    )
    .await;
    stop.cancel();
    stop_server.cancel();
}
