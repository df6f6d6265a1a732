//! One replica of a service as a pool sees it: its address and channel,
//! its health record, its recent latency and load, and its counters.

use crate::{
    health::{Health, Observation},
    latency::RecentLatency,
    metrics::ReplicaCounts,
    settings::{Ejection, ProbeSettings},
};
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// Makes the channel to a replica at `host:port`. Over TCP in a running
/// pool; the pool's tests connect to replicas in the same process.
pub(crate) type Connector = Arc<dyn Fn(&str, &ProbeSettings) -> Result<Channel, String> + Send + Sync>;

/// Channels over TCP (with `tls`, over mutual TLS) that connect on first
/// use; HTTP/2 keep-alive pings every probe interval find a dead peer even
/// on an idle connection.
pub(crate) fn tcp(tls: Option<ClientTlsConfig>) -> Connector {
    Arc::new(move |addr, probe| {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|error| format!("replica address {addr:?}: {error}"))?;
        if let Some(tls) = &tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|error| format!("TLS for {addr}: {error}"))?;
        }
        let endpoint = endpoint
            .connect_timeout(probe.timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(probe.interval)
            .keep_alive_timeout(probe.timeout)
            .keep_alive_while_idle(true);
        Ok(endpoint.connect_lazy())
    })
}

/// One replica.
#[derive(Debug)]
pub(crate) struct Replica {
    /// Unique among the replicas of this process's pools.
    id: u64,
    addr: String,
    served_by: http::HeaderValue,
    weight: u32,
    /// The replica spec it was found through.
    source: usize,
    channel: Channel,
    health: Mutex<Health>,
    /// Calls it answered.
    served: AtomicU64,
    /// Calls sent to it and not yet answered.
    in_flight: AtomicU32,
    /// How fast it answered lately.
    pub(crate) latency: RecentLatency,
    /// What happened to its attempts and probes.
    pub(crate) counts: ReplicaCounts,
    /// Misses in a row (server errors, hedge races lost), and when the
    /// first of them came (ms since `created`): outlier ejection.
    misses: AtomicU32,
    first_miss_ms: AtomicU64,
    created: Instant,
    /// Stops its prober: cancelled when discovery no longer finds it.
    pub(crate) retired: CancellationToken,
}

impl Replica {
    /// A replica at `addr` (`host:port`), found through spec `source`.
    pub(crate) fn new(
        addr: &str,
        weight: u32,
        source: usize,
        connect: &Connector,
        probe: &ProbeSettings,
    ) -> Result<Self, String> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Relaxed),
            served_by: http::HeaderValue::from_str(addr)
                .map_err(|_| format!("replica address {addr:?} is not ASCII"))?,
            addr: addr.to_owned(),
            weight,
            source,
            channel: connect(addr, probe)?,
            health: Mutex::new(Health::default()),
            served: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            latency: RecentLatency::new(),
            counts: ReplicaCounts::default(),
            misses: AtomicU32::new(0),
            first_miss_ms: AtomicU64::new(0),
            created: Instant::now(),
            retired: CancellationToken::new(),
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// `host:port`.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The address as an `x-served-by` header value.
    pub(crate) fn served_by(&self) -> &http::HeaderValue {
        &self.served_by
    }

    /// Its share in weighted round-robin.
    pub(crate) fn weight(&self) -> u32 {
        self.weight
    }

    /// The replica spec it was found through.
    pub(crate) fn source(&self) -> usize {
        self.source
    }

    /// Its channel (cheap to clone; all clones share the connection).
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A copy of its health record.
    pub(crate) fn health(&self) -> Health {
        self.health.lock().expect("health lock").clone()
    }

    /// Whether it is in rotation.
    pub(crate) fn in_rotation(&self) -> bool {
        self.health.lock().expect("health lock").in_rotation()
    }

    /// Records an observation; returns the new rotation state if it changed.
    pub(crate) fn observe(&self, observation: &Observation, probe: &ProbeSettings) -> Option<bool> {
        self.health
            .lock()
            .expect("health lock")
            .observe(observation, probe)
    }

    /// Counts a call sent to it, until the returned guard is dropped.
    pub(crate) fn start_call(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(self)
    }

    /// Calls sent to it and not yet answered.
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// Counts an answer that took `latency`; an answer that was not a
    /// server error ends a run of misses.
    pub(crate) fn answered(&self, latency: Duration, server_error: bool) {
        self.served.fetch_add(1, Relaxed);
        self.latency.record(latency);
        if !server_error && self.misses.load(Relaxed) != 0 {
            self.misses.store(0, Relaxed);
        }
    }

    /// Counts a miss: a server error, or a hedge race lost (its attempt
    /// cancelled because another replica answered first). True when it
    /// completes a run that ejects: a replica that only misses, a frozen
    /// one whose every call is hedged elsewhere included, leaves.
    pub(crate) fn missed(&self, ejection: &Ejection) -> bool {
        let now_ms = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        let run = self.misses.fetch_add(1, Relaxed) + 1;
        if run == 1 {
            self.first_miss_ms.store(now_ms, Relaxed);
        } else if now_ms.saturating_sub(self.first_miss_ms.load(Relaxed)) > ejection.window.as_millis() as u64
        {
            // Too far apart to be one run: this one starts the next.
            self.misses.store(1, Relaxed);
            self.first_miss_ms.store(now_ms, Relaxed);
            return false;
        }
        if run >= ejection.consecutive {
            self.misses.store(0, Relaxed);
            return true;
        }
        false
    }

    /// Calls it has answered.
    pub(crate) fn served(&self) -> u64 {
        self.served.load(Relaxed)
    }
}

/// A call in flight on a replica; counted until dropped.
#[derive(Debug)]
pub(crate) struct InFlight<'a>(&'a Replica);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica() -> Replica {
        let probe = crate::settings::PoolSettings::default().probe;
        Replica::new("127.0.0.1:1", 1, 0, &tcp(None), &probe).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_of_misses_within_the_window_ejects() {
        let replica = replica();
        let ejection = Ejection {
            consecutive: 3,
            ..crate::PoolSettings::default().ejection
        };
        assert!(!replica.missed(&ejection));
        assert!(!replica.missed(&ejection));
        replica.answered(Duration::from_millis(1), false);
        assert!(!replica.missed(&ejection), "a good answer ended the run");
        assert!(!replica.missed(&ejection));
        assert!(replica.missed(&ejection), "three in a row");

        assert!(!replica.missed(&ejection));
        assert!(!replica.missed(&ejection));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(
            !replica.missed(&ejection),
            "errors spread over more than the window are no run"
        );
    }

    #[tokio::test]
    async fn counts_calls_in_flight() {
        let replica = replica();
        let first = replica.start_call();
        let second = replica.start_call();
        assert_eq!(replica.in_flight(), 2);
        drop(first);
        drop(second);
        assert_eq!(replica.in_flight(), 0);
    }
}
