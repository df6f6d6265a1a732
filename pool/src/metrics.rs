//! What pools count, and [`PoolMetrics`], which shows it to Prometheus.
//!
//! Counting is atomics on the call path (no lock, no map); the labels are
//! built only when scraped. A pool keeps totals of its own beside each
//! replica's, so a service's series do not drop when a replica retires.

use crate::{ReplicaPool, health::Observation, replica::Replica};
use dishpatch::metrics::{CODES, code_name};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tonic::Code;

/// A count per gRPC code.
#[derive(Debug, Default)]
pub(crate) struct ByCode([AtomicU64; CODES.len()]);

impl ByCode {
    pub(crate) fn add(&self, code: Code) {
        self.0[code as usize].fetch_add(1, Relaxed);
    }

    /// The codes counted at least once, with their counts.
    fn counted(&self) -> impl Iterator<Item = (Code, u64)> + '_ {
        CODES
            .iter()
            .map(|code| (*code, self.0[*code as usize].load(Relaxed)))
            .filter(|(_, count)| *count > 0)
    }
}

/// What probes found, as a label value.
const PROBE_RESULTS: [&str; 3] = ["serving", "not_serving", "failed"];

/// What is counted of one replica, or of all a pool ever had.
#[derive(Debug, Default)]
pub(crate) struct ReplicaCounts {
    /// Attempts, by the code they ended with (a transport failure counts
    /// as UNAVAILABLE, no answer in time as DEADLINE_EXCEEDED, an attempt
    /// dropped because another answered first as CANCELLED).
    pub(crate) attempts: ByCode,
    /// Probe results, in [`PROBE_RESULTS`]' order.
    probes: [AtomicU64; 3],
    /// Times calls took it out of rotation.
    ejections: AtomicU64,
}

impl ReplicaCounts {
    /// Times calls took it out of rotation.
    pub(crate) fn ejections(&self) -> u64 {
        self.ejections.load(Relaxed)
    }

    /// Counts what `observation` was; `left` says whether it took the
    /// replica out of rotation.
    fn observed(&self, observation: &Observation, left: bool) {
        let probe = match observation {
            Observation::Serving | Observation::StillServing => 0,
            Observation::NotServing => 1,
            Observation::ProbeFailed(_) => 2,
            Observation::Ejected(_) => {
                if left {
                    self.ejections.fetch_add(1, Relaxed);
                }
                return;
            }
        };
        self.probes[probe].fetch_add(1, Relaxed);
    }
}

/// What is counted of a pool as a whole.
#[derive(Debug, Default)]
pub(crate) struct PoolCounts {
    /// Calls, by the code the caller got.
    pub(crate) calls: ByCode,
    /// Attempts after a first that failed.
    pub(crate) retries: AtomicU64,
    /// Second attempts of slow reads.
    pub(crate) hedges: AtomicU64,
    /// Retries and hedges the retry budget refused.
    pub(crate) budget_refusals: AtomicU64,
    /// Every replica's counts added up, retired replicas' included.
    pub(crate) replicas: ReplicaCounts,
}

impl PoolCounts {
    /// Counts what was observed of `replica`, in its counts and the pool's.
    pub(crate) fn observed(&self, replica: &Replica, observation: &Observation, change: Option<bool>) {
        let left = change == Some(false);
        replica.counts.observed(observation, left);
        self.replicas.observed(observation, left);
    }
}

/// A call or attempt being made, counted in `counts` when it ends, as
/// CANCELLED if it is dropped first (its caller went away, or another
/// attempt answered).
#[derive(Debug)]
pub(crate) struct Counted<'a, const N: usize> {
    counts: [&'a ByCode; N],
    ended: bool,
}

impl<'a> Counted<'a, 1> {
    /// A call through the pool.
    pub(crate) fn call(pool: &'a PoolCounts) -> Self {
        Self {
            counts: [&pool.calls],
            ended: false,
        }
    }
}

impl<'a> Counted<'a, 2> {
    /// An attempt on `replica`: its count and the pool's.
    pub(crate) fn attempt(replica: &'a Replica, pool: &'a PoolCounts) -> Self {
        Self {
            counts: [&replica.counts.attempts, &pool.replicas.attempts],
            ended: false,
        }
    }
}

impl<const N: usize> Counted<'_, N> {
    pub(crate) fn ended(mut self, code: Code) {
        self.counts.iter().for_each(|counts| counts.add(code));
        self.ended = true;
    }
}

impl<const N: usize> Drop for Counted<'_, N> {
    fn drop(&mut self) {
        if !self.ended {
            self.counts.iter().for_each(|counts| counts.add(Code::Cancelled));
        }
    }
}

/// The pools of a process, as Prometheus metrics named `pool_…`, labelled
/// by service and, where replicas may be named, by replica (`host:port`).
/// Read when scraped.
#[derive(Debug)]
pub struct PoolMetrics {
    pools: Vec<ReplicaPool>,
    name_replicas: bool,
}

impl PoolMetrics {
    /// The metrics of `pools`; per replica only if `name_replicas` (their
    /// addresses are then in the metrics), else per service.
    pub fn new(pools: Vec<ReplicaPool>, name_replicas: bool) -> Self {
        Self { pools, name_replicas }
    }
}

/// A label set built at scrape time.
type Labels<'a> = Vec<(&'static str, &'a str)>;

/// A metric's name and help, and how to read it.
type Named<Read> = (&'static str, &'static str, Read);
/// Where a pool keeps a counter.
type CounterOf = fn(&PoolCounts) -> &AtomicU64;
/// How a pool's gauge is read.
type GaugeOf = fn(&ReplicaPool) -> i64;

impl Collector for PoolMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let pools: Vec<_> = self
            .pools
            .iter()
            .map(|pool| (pool, pool.shared.replicas.load_full()))
            .collect();
        // Each replica's counts with its labels, or each pool's totals.
        let counts: Vec<(Labels<'_>, &ReplicaCounts)> = if self.name_replicas {
            pools
                .iter()
                .flat_map(|(pool, replicas)| {
                    replicas.iter().map(|replica| {
                        let labels = vec![("service", pool.service()), ("replica", replica.addr())];
                        (labels, &replica.counts)
                    })
                })
                .collect()
        } else {
            pools
                .iter()
                .map(|(pool, _)| (vec![("service", pool.service())], &pool.shared.counts.replicas))
                .collect()
        };
        let service = |pool: &ReplicaPool| vec![("service", pool.service())];

        let mut family = encoder.encode_descriptor(
            "pool_calls",
            "Calls through a service's pool, by the gRPC code the caller got.",
            None,
            MetricType::Counter,
        )?;
        for (pool, _) in &pools {
            for (code, count) in pool.shared.counts.calls.counted() {
                let mut labels = service(pool);
                labels.push(("code", code_name(code)));
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "pool_attempts",
            "Attempts sent to replicas, by the code each ended with (no answer in time: DEADLINE_EXCEEDED; \
             a lost connection: UNAVAILABLE; given up for another attempt's answer: CANCELLED).",
            None,
            MetricType::Counter,
        )?;
        for (labels, counts) in &counts {
            for (code, count) in counts.attempts.counted() {
                let mut labels = labels.clone();
                labels.push(("code", code_name(code)));
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "pool_probes",
            "Health probe results: serving, not_serving (draining) or failed.",
            None,
            MetricType::Counter,
        )?;
        for (labels, counts) in &counts {
            for (result, count) in PROBE_RESULTS.iter().zip(&counts.probes) {
                let mut labels = labels.clone();
                labels.push(("result", result));
                ConstCounter::new(count.load(Relaxed)).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "pool_ejections",
            "Times calls took a replica out of rotation (unreachable, UNAVAILABLE, timed out, or a run of server errors).",
            None,
            MetricType::Counter,
        )?;
        for (labels, counts) in &counts {
            ConstCounter::new(counts.ejections.load(Relaxed)).encode(family.encode_family(labels)?)?;
        }

        let pool_counters: [Named<CounterOf>; 3] = [
            (
                "pool_retries",
                "Attempts made after a failed one, on another replica.",
                |counts| &counts.retries,
            ),
            (
                "pool_hedges",
                "Second attempts of reads not answered within the pool's recent p95.",
                |counts| &counts.hedges,
            ),
            (
                "pool_retry_budget_refusals",
                "Retries and hedges not made because the retry budget (20% of recent calls, plus 10 a second) was spent.",
                |counts| &counts.budget_refusals,
            ),
        ];
        for (name, help, counter) in pool_counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (pool, _) in &pools {
                let count = counter(&pool.shared.counts).load(Relaxed);
                ConstCounter::new(count).encode(family.encode_family(&service(pool))?)?;
            }
        }

        let gauges: [Named<GaugeOf>; 3] = [
            (
                "pool_replicas_known",
                "Replicas of a service, configured or resolved.",
                |pool| pool.state().known as i64,
            ),
            (
                "pool_replicas_in_rotation",
                "Replicas of a service taking calls.",
                |pool| pool.state().in_rotation as i64,
            ),
            (
                "pool_panicking",
                "1 while fewer of a service's replicas than the panic threshold are in rotation.",
                |pool| i64::from(pool.state().panicking),
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (pool, _) in &pools {
                ConstGauge::new(value(pool)).encode(family.encode_family(&service(pool))?)?;
            }
        }

        if self.name_replicas {
            let mut family = encoder.encode_descriptor(
                "pool_replica_in_rotation",
                "1 while a replica is in rotation.",
                None,
                MetricType::Gauge,
            )?;
            for (pool, replicas) in &pools {
                for replica in replicas.iter() {
                    let labels = [("service", pool.service()), ("replica", replica.addr())];
                    let value = i64::from(replica.in_rotation());
                    ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}
