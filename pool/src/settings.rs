//! How a pool balances, probes, times out, hedges, ejects and discovers.
//! Every field has a default that suits one machine
//! ([`PoolSettings::default`]); the edge's flags override them.

use std::{str::FromStr, time::Duration};

/// How a pool picks the replica for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Each replica in rotation in turn: two replicas alternate exactly.
    RoundRobin,
    /// The less loaded of two replicas picked at random (power of two
    /// choices), load being calls in flight times recent latency.
    P2c,
    /// Each replica in rotation in turn, as often as its weight.
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

/// How replicas are probed (`grpc.health.v1`), and how many probe results
/// in a row move one in or out of rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSettings {
    /// Time between probes of a replica in rotation (and between
    /// re-confirmations while its Watch stream stays open). A replica out
    /// of rotation is probed more often: from 50 ms, doubling up to this.
    pub interval: Duration,
    /// How long one probe, or a connect, may take.
    pub timeout: Duration,
    /// SERVING probes in a row that bring a replica back after it left.
    /// A replica never seen before joins on its first.
    pub rise: u32,
    /// Failed probes in a row that take a replica out of rotation.
    /// NOT_SERVING, or a call that finds it gone, takes it out at once.
    pub fall: u32,
}

/// How long one attempt of a call that may be retried waits for its
/// replica before trying another: `p99_multiple` times that replica's
/// recent p99 latency, but never less than `min`, and never more than what
/// remains of the call's deadline. A call that may not be retried has the
/// whole deadline on one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryTimeout {
    /// Multiple of the replica's recent p99.
    pub p99_multiple: u32,
    /// The least an attempt is given (also used while a replica has too few
    /// recent answers to know its p99).
    pub min: Duration,
}

/// Outlier ejection by answers: a replica that misses `consecutive` calls
/// in a row, each within `window` of the first, leaves rotation until
/// probes bring it back, as Envoy's consecutive-5xx detector does. A miss
/// is a server error (INTERNAL, UNKNOWN, DATA_LOSS) or a hedge race lost
/// (another replica answered first). Timeouts eject at once, without
/// counting. But a slow or erring replica is not ejected when that would
/// leave fewer than `1 - max_share` of the known replicas in rotation: when
/// most replicas seem slow, the fleet is overloaded, and ejecting them
/// would only pile the load onto fewer (Envoy's max_ejection_percent). A
/// replica that is unreachable, or says UNAVAILABLE, leaves at once
/// whatever the share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ejection {
    /// Misses in a row that eject.
    pub consecutive: u32,
    /// How close together they must come.
    pub window: Duration,
    /// The largest share (0.0 to 1.0) of the known replicas that slowness
    /// and errors may take out of rotation.
    pub max_share: f64,
}

/// Envoy's panic threshold: when fewer than `threshold` (0.0 to 1.0) of a
/// pool's replicas are in rotation the pool says so (`/health`, a log
/// line); and if none is, `route_when_none_healthy` lets calls go to
/// replicas that are out only because calls failed on them or because they
/// were not probed yet (never to NOT_SERVING or probe-failed ones), rather
/// than failing every call at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Panic {
    /// The share of healthy replicas below which the pool is panicking.
    pub threshold: f64,
    /// Whether a pool with no replica in rotation tries ejected ones.
    pub route_when_none_healthy: bool,
}

/// How a pool balances and probes. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolSettings {
    /// How a replica is picked.
    pub strategy: Strategy,
    /// How replicas are probed.
    pub probe: ProbeSettings,
    /// How long a retryable attempt waits before trying another replica.
    pub try_timeout: TryTimeout,
    /// Whether reads are hedged: a read not answered after the pool's
    /// recent p95 is sent to a second replica too, and the first answer
    /// wins. Hedges draw on the retry budget.
    pub hedge_reads: bool,
    /// When server errors eject a replica.
    pub ejection: Ejection,
    /// A replica that joins (or rejoins) the rotation ramps from a tenth of
    /// its share to all of it over this long; zero turns slow start off.
    pub slow_start: Duration,
    /// What the pool does when few or no replicas are healthy.
    pub panic: Panic,
    /// How often DNS names among the replica specs are resolved again (and
    /// at once when every replica found under a name has failed).
    pub dns_interval: Duration,
    /// The deadline of a call whose context sets none.
    pub default_deadline: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            strategy: Strategy::RoundRobin,
            probe: ProbeSettings {
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(1),
                rise: 2,
                fall: 2,
            },
            try_timeout: TryTimeout {
                p99_multiple: 4,
                min: Duration::from_millis(250),
            },
            hedge_reads: false,
            ejection: Ejection {
                consecutive: 5,
                window: Duration::from_secs(10),
                max_share: 0.5,
            },
            slow_start: Duration::from_secs(10),
            panic: Panic {
                threshold: 0.5,
                route_when_none_healthy: true,
            },
            dns_interval: Duration::from_secs(5),
            default_deadline: Duration::from_secs(5),
        }
    }
}
