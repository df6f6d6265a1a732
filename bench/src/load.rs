//! The load: workers that each send one request after another (closed
//! loop), or a fixed rate of requests spread over the workers (open loop),
//! for a warm-up, then a measured duration or request budget; always ends.
//!
//! In the open loop, latency counts from when a request was due, not when
//! a free worker got to send it: a stall shows up in the latencies instead
//! of quietly lowering the rate (no coordinated omission).

use crate::{
    grpc::{self, GrpcConnection},
    http::HttpConnection,
    report::{Recorder, Report},
    scenario::{Catalog, Scenario, Walk},
    target::Target,
};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;

/// What a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer (or gRPC OK).
    Ok,
    /// An order was placed; its id, if the answer carried one.
    Placed(Option<String>),
    /// Failed, and how: `connect`, `io`, `timeout`, `http 503`, `grpc Unavailable`, …
    Failed(String),
}

/// How much load, for how long.
#[derive(Debug, Clone)]
pub struct LoadShape {
    /// Concurrent workers: HTTP connections, or gRPC streams in flight.
    pub connections: usize,
    /// HTTP/2 connections the gRPC workers share.
    pub grpc_connections: usize,
    /// Requests per second (open loop); `None` for a closed loop.
    pub rate: Option<f64>,
    /// Load before measuring starts.
    pub warmup: Duration,
    /// How long to measure.
    pub duration: Duration,
    /// Stop after this many measured requests, if sooner.
    pub max_requests: Option<u64>,
    /// How long one request may take before it counts as a timeout.
    pub request_timeout: Duration,
    /// The bearer token every HTTP request carries (orders need one).
    pub token: Option<Arc<str>>,
}

/// A worker's connection.
#[derive(Debug)]
enum Connection {
    Http(HttpConnection),
    Grpc(GrpcConnection),
}

impl Connection {
    async fn send(&mut self, operation: &crate::scenario::Operation, timeout: Duration) -> Outcome {
        let sent = match self {
            Self::Http(connection) => tokio::time::timeout(timeout, connection.send(operation)).await,
            Self::Grpc(connection) => tokio::time::timeout(timeout, connection.send(operation)).await,
        };
        sent.unwrap_or_else(|_| {
            if let Self::Http(connection) = self {
                // Its request may still be on the wire: start afresh.
                connection.reset();
            }
            Outcome::Failed("timeout".into())
        })
    }
}

/// Runs `scenario` against `target` with `shape`, using `catalog`'s
/// restaurants.
pub async fn run(
    target: &Target,
    scenario: Scenario,
    catalog: Catalog,
    shape: &LoadShape,
) -> Result<Report, String> {
    if matches!(target, Target::Grpc { .. }) && scenario.writes() {
        return Err(format!(
            "the {scenario:?} scenario places orders: run it against the edge (http://…)"
        ));
    }
    let connections = make_connections(target, shape).await?;
    let catalog = Arc::new(catalog);
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    );
    let start = Instant::now();
    let clock = Clock {
        measure_from: start + shape.warmup,
        end: start + shape.warmup + shape.duration,
        start,
    };
    let measured = Arc::new(AtomicU64::new(0));
    let next_slot = Arc::new(AtomicU64::new(0));

    let workers: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(index, connection)| {
            let worker = Worker {
                connection,
                walk: Walk::new(scenario, catalog.clone(), &run_id, index),
                recorder: Recorder::default(),
                measured: measured.clone(),
                next_slot: next_slot.clone(),
            };
            tokio::spawn(worker.run(clock, shape.clone()))
        })
        .collect();
    let mut recorder = Recorder::default();
    for worker in workers {
        recorder.merge(
            worker
                .await
                .map_err(|error| format!("a worker failed: {error}"))?,
        );
    }
    let measured_for = Instant::now()
        .min(clock.end)
        .saturating_duration_since(clock.measure_from);
    Ok(Report::new(target, scenario, shape, measured_for, recorder))
}

async fn make_connections(target: &Target, shape: &LoadShape) -> Result<Vec<Connection>, String> {
    Ok(match target {
        Target::Http { authority } => (0..shape.connections)
            .map(|_| Connection::Http(HttpConnection::new(authority, shape.token.clone())))
            .collect(),
        Target::Grpc { authority } => {
            let channels = grpc::connect(authority, shape.grpc_connections.max(1)).await?;
            (0..shape.connections)
                .map(|index| Connection::Grpc(GrpcConnection::new(channels[index % channels.len()].clone())))
                .collect()
        }
    })
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    measure_from: Instant,
    end: Instant,
}

#[derive(Debug)]
struct Worker {
    connection: Connection,
    walk: Walk,
    recorder: Recorder,
    measured: Arc<AtomicU64>,
    next_slot: Arc<AtomicU64>,
}

impl Worker {
    async fn run(mut self, clock: Clock, shape: LoadShape) -> Recorder {
        let interval = shape.rate.map(|rate| Duration::from_secs_f64(1.0 / rate));
        loop {
            // When this request is due: now (closed loop), or its slot in
            // the schedule (open loop).
            let due = match interval {
                None => Instant::now(),
                Some(interval) => {
                    let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
                    let due = clock.start + interval.mul_f64(slot as f64);
                    if due >= clock.end {
                        break;
                    }
                    tokio::time::sleep_until(due).await;
                    due
                }
            };
            if due >= clock.end {
                break;
            }
            let measuring = due >= clock.measure_from;
            if measuring
                && shape
                    .max_requests
                    .is_some_and(|max| self.measured.fetch_add(1, Ordering::Relaxed) >= max)
            {
                break;
            }
            let operation = self.walk.next_operation();
            let outcome = self.connection.send(&operation, shape.request_timeout).await;
            if measuring {
                self.recorder.record(&outcome, due.elapsed());
            }
            if let Outcome::Placed(Some(order_id)) = outcome {
                self.walk.placed(order_id);
            }
        }
        self.recorder
    }
}
