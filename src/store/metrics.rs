//! What a store's metrics record: how long its queries take, by the name
//! the service gives each, and how long writers wait for their turn.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, histogram::Histogram},
    registry::{Registry, Unit},
};
use std::{future::Future, time::Duration};
use tokio::time::Instant;

use crate::metrics::latency_histogram;

/// A query's series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueryLabels {
    query: &'static str,
}

/// A store's metrics; clones share them.
#[derive(Debug, Clone)]
pub(super) struct StoreMetrics {
    queries: Family<QueryLabels, Histogram, fn() -> Histogram>,
    write_turn_wait: Histogram,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            queries: Family::new_with_constructor(latency_histogram),
            write_turn_wait: latency_histogram(),
        }
    }
}

impl StoreMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "store_query_duration",
            "Time a store query or write took, by what it does, its turn's wait excluded",
            Unit::Seconds,
            self.queries.clone(),
        );
        registry.register_with_unit(
            "store_write_turn_wait",
            "Time a SQLite writer waited for its turn to write",
            Unit::Seconds,
            self.write_turn_wait.clone(),
        );
    }

    pub(super) async fn time<T>(&self, query: &'static str, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let done = work.await;
        self.took(query, started.elapsed());
        done
    }

    pub(super) fn took(&self, query: &'static str, took: Duration) {
        self.queries
            .get_or_create(&QueryLabels { query })
            .observe(took.as_secs_f64());
    }

    pub(super) fn waited_for_turn(&self, waited: Duration) {
        self.write_turn_wait.observe(waited.as_secs_f64());
    }
}
