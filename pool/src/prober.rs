//! The prober of one replica: follows `grpc.health.v1.Health/Watch` so a
//! replica that turns NOT_SERVING leaves rotation at once, re-confirms a
//! SERVING replica every interval while the watch stays open, and falls
//! back to `Check` polling where Watch is unimplemented. Every result goes
//! through the replica's rise/fall thresholds.

use super::{
    ReplicaPool,
    replica::{Observation, Replica},
};
use dishpatch::time::{Backoff, jittered};
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The first and the longest wait between probes of a replica out of
/// rotation: the waits double from one to the other, so a replica that is
/// still starting (the whole stack starts at once) is admitted within
/// milliseconds of serving, and one that stays down costs a probe a second.
const OUT_OF_ROTATION_FIRST: Duration = Duration::from_millis(50);
const OUT_OF_ROTATION_INTERVAL: Duration = Duration::from_secs(1);

/// How often and how patiently to probe.
#[derive(Debug, Clone, Copy)]
pub struct ProbeSettings {
    /// Time between probes (and between re-confirmations on a watch).
    pub interval: Duration,
    /// How long one probe may take.
    pub timeout: Duration,
}

/// Probes `replica` of `pool` until `stop`.
pub(crate) async fn probe(
    pool: ReplicaPool,
    replica: Arc<Replica>,
    settings: ProbeSettings,
    stop: CancellationToken,
) {
    let mut client = HealthClient::new(replica.channel());
    let service = pool.shared.health_name.to_owned();
    let mut watch_supported = true;
    // Look at once on start, and again at once after a watch ends (but not
    // twice in a row, so a watch that keeps ending cannot spin): a replica
    // that went away fails twice quickly, one that restarted comes back
    // quickly.
    let mut look_again_now = true;
    let mut out_of_rotation = Backoff::new(OUT_OF_ROTATION_FIRST, OUT_OF_ROTATION_INTERVAL);
    loop {
        let looking_again = std::mem::take(&mut look_again_now);
        if !looking_again {
            // A replica out of rotation is looked at more often, so one that
            // starts (or returns) is served soon.
            let wait = if replica.health().in_rotation {
                out_of_rotation.reset();
                settings.interval
            } else {
                settings.interval.min(out_of_rotation.next_wait())
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(jittered(wait, 0.2)) => {}
            }
        }
        let request = HealthCheckRequest {
            service: service.clone(),
        };
        if !watch_supported {
            let mut check = Request::new(request);
            check.set_timeout(settings.timeout);
            let observation = match tokio::time::timeout(settings.timeout, client.check(check)).await {
                Ok(Ok(response)) => serving_or_not(response.into_inner().status()),
                Ok(Err(status)) => Observation::ProbeFailed(status.message().to_owned()),
                Err(_) => Observation::ProbeFailed("health check timed out".into()),
            };
            pool.observe(&replica, observation);
            continue;
        }
        let mut updates = match tokio::time::timeout(settings.timeout, client.watch(request)).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) if status.code() == Code::Unimplemented => {
                tracing::info!(
                    replica = replica.addr(),
                    "health Watch unimplemented; polling Check instead"
                );
                watch_supported = false;
                look_again_now = !looking_again;
                continue;
            }
            Ok(Err(status)) => {
                pool.observe(&replica, Observation::ProbeFailed(status.message().to_owned()));
                continue;
            }
            Err(_) => {
                pool.observe(
                    &replica,
                    Observation::ProbeFailed("health watch timed out".into()),
                );
                continue;
            }
        };
        let mut serving = false;
        loop {
            let update = tokio::select! {
                () = stop.cancelled() => return,
                update = updates.message() => update,
                () = tokio::time::sleep(settings.interval) => {
                    // No news on an open watch is good news: keep-alive pings
                    // would have broken it were the replica gone.
                    if serving {
                        pool.observe(&replica, Observation::Serving);
                    }
                    continue;
                }
            };
            match update {
                Ok(Some(health)) => {
                    let observation = serving_or_not(health.status());
                    serving = observation == Observation::Serving;
                    pool.observe(&replica, observation);
                }
                Ok(None) => {
                    pool.observe(&replica, Observation::ProbeFailed("health watch ended".into()));
                    break;
                }
                Err(status) => {
                    pool.observe(&replica, Observation::ProbeFailed(status.message().to_owned()));
                    break;
                }
            }
        }
        look_again_now = !looking_again;
    }
}

fn serving_or_not(status: ServingStatus) -> Observation {
    match status {
        ServingStatus::Serving => Observation::Serving,
        ServingStatus::NotServing => Observation::NotServing,
        other => Observation::ProbeFailed(format!("health is {}", other.as_str_name())),
    }
}
