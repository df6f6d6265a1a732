//! The prober of one replica: follows `grpc.health.v1.Health/Watch` so a
//! replica that turns NOT_SERVING leaves rotation at once ([`watch`]), and
//! falls back to polling `Check` where Watch is unimplemented ([`check`]).
//! Every result goes through the replica's rise/fall thresholds.
//!
//! While a replica is in rotation an open Watch that brings no news is good
//! news (HTTP/2 keep-alive pings would break it were the replica gone);
//! while calls have ejected it, only an answered Check brings it back.

use crate::{Shared, health::Observation, replica::Replica};
use dishpatch::time::{Backoff, jittered};
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The first and the longest wait between probes of a replica out of
/// rotation: the waits double from one to the other (capped by the probe
/// interval), so a replica that is still starting (the whole stack starts
/// at once) is admitted within milliseconds of serving, and one that stays
/// down costs a probe a second.
const OUT_OF_ROTATION_FIRST: Duration = Duration::from_millis(50);
const OUT_OF_ROTATION_LONGEST: Duration = Duration::from_secs(1);

/// Probes `replica` of `pool` until `stop`, or until the replica retires.
pub(crate) async fn probe(pool: Arc<Shared>, replica: Arc<Replica>, stop: CancellationToken) {
    let mut prober = Prober {
        client: HealthClient::new(replica.channel()),
        waits: Waits::new(pool.settings.probe.interval),
        pool,
        replica,
        stop,
    };
    let mut watch_supported = true;
    // Look at once on start, and again at once after a watch ends (but not
    // twice in a row, so a watch that keeps ending cannot spin): a replica
    // that went away fails twice quickly, one that restarted comes back
    // quickly.
    let mut look_again_now = true;
    loop {
        let looking_again = std::mem::take(&mut look_again_now);
        if !looking_again && !prober.wait().await {
            return;
        }
        if !watch_supported {
            let found = prober.check().await;
            prober.observe(found);
            continue;
        }
        match prober.watch().await {
            Watched::Unimplemented => {
                tracing::info!(
                    replica = prober.replica.addr(),
                    "health Watch unimplemented; polling Check instead"
                );
                watch_supported = false;
                look_again_now = !looking_again;
            }
            Watched::Ended => look_again_now = !looking_again,
            Watched::Stopped => return,
        }
    }
}

/// How a Watch ended.
#[derive(Debug, PartialEq, Eq)]
enum Watched {
    /// The replica does not serve Watch.
    Unimplemented,
    /// The stream failed or ended: look again.
    Ended,
    /// The prober was stopped.
    Stopped,
}

struct Prober {
    pool: Arc<Shared>,
    replica: Arc<Replica>,
    client: HealthClient<Channel>,
    waits: Waits,
    stop: CancellationToken,
}

impl Prober {
    fn observe(&self, found: Observation) {
        self.pool.observe(&self.replica, found);
    }

    fn request(&self) -> HealthCheckRequest {
        HealthCheckRequest {
            service: self.pool.health_name.to_owned(),
        }
    }

    /// Waits until the next probe is due; false if stopped meanwhile.
    async fn wait(&mut self) -> bool {
        let wait = self.waits.next(&self.replica);
        tokio::select! {
            () = stopped(&self.stop, &self.replica) => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// One `Check`, within the probe timeout.
    async fn check(&mut self) -> Observation {
        let timeout = self.pool.settings.probe.timeout;
        let mut check = Request::new(self.request());
        check.set_timeout(timeout);
        match tokio::time::timeout(timeout, self.client.check(check)).await {
            Ok(Ok(response)) => serving_or_not(response.into_inner().status()),
            Ok(Err(status)) => Observation::ProbeFailed(status.message().to_owned()),
            Err(_) => Observation::ProbeFailed("health check timed out".into()),
        }
    }

    /// Follows one `Watch` stream until it ends.
    async fn watch(&mut self) -> Watched {
        let opened = tokio::time::timeout(
            self.pool.settings.probe.timeout,
            self.client.watch(self.request()),
        )
        .await;
        let mut updates = match opened {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) if status.code() == Code::Unimplemented => return Watched::Unimplemented,
            Ok(Err(status)) => {
                self.observe(Observation::ProbeFailed(status.message().to_owned()));
                return Watched::Ended;
            }
            Err(_) => {
                self.observe(Observation::ProbeFailed("health watch timed out".into()));
                return Watched::Ended;
            }
        };
        let mut serving = false;
        loop {
            let wait = self.waits.next(&self.replica);
            let update = tokio::select! {
                () = stopped(&self.stop, &self.replica) => return Watched::Stopped,
                update = updates.message() => update,
                () = tokio::time::sleep(wait) => {
                    if serving {
                        // A replica calls ejected must answer a Check to
                        // come back; should a call eject it between this
                        // look and the observation, the observation says
                        // it was no probe.
                        let found = if self.replica.in_rotation() {
                            Observation::StillServing
                        } else {
                            self.check().await
                        };
                        self.observe(found);
                    }
                    continue;
                }
            };
            match update {
                Ok(Some(health)) => {
                    let found = serving_or_not(health.status());
                    serving = found == Observation::Serving;
                    self.observe(found);
                }
                Ok(None) => {
                    self.observe(Observation::ProbeFailed("health watch ended".into()));
                    return Watched::Ended;
                }
                Err(status) => {
                    self.observe(Observation::ProbeFailed(status.message().to_owned()));
                    return Watched::Ended;
                }
            }
        }
    }
}

/// The waits between probes: the interval for a replica in rotation; for
/// one out of it, from [`OUT_OF_ROTATION_FIRST`] doubling, starting over
/// each time it joins.
struct Waits {
    interval: Duration,
    out_of_rotation: Backoff,
}

impl Waits {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            out_of_rotation: Backoff::new(OUT_OF_ROTATION_FIRST, OUT_OF_ROTATION_LONGEST),
        }
    }

    fn next(&mut self, replica: &Replica) -> Duration {
        let wait = if replica.in_rotation() {
            self.out_of_rotation.reset();
            self.interval
        } else {
            self.interval.min(self.out_of_rotation.next_wait())
        };
        // Probes of many replicas that started together spread out.
        jittered(wait, 0.2)
    }
}

/// Until the pool stops or `replica` retires.
async fn stopped(stop: &CancellationToken, replica: &Replica) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = replica.retired.cancelled() => {}
    }
}

fn serving_or_not(status: ServingStatus) -> Observation {
    match status {
        ServingStatus::Serving => Observation::Serving,
        ServingStatus::NotServing => Observation::NotServing,
        other => Observation::ProbeFailed(format!("health is {}", other.as_str_name())),
    }
}
