//! What a run measured: successful requests per second, latency
//! percentiles from an HDR histogram (successes only), and every failure
//! counted by kind. A non-2xx answer is an error, never throughput.

use crate::{
    load::{LoadShape, Outcome},
    scenario::Scenario,
    target::Target,
};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::{collections::BTreeMap, time::Duration};

/// Latencies up to a minute, in microseconds, to three significant digits.
const MAX_MICROS: u64 = 60_000_000;

/// One worker's (or the merged) measurements.
#[derive(Debug)]
pub struct Recorder {
    latencies: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            latencies: Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds"),
            ok: 0,
            errors: BTreeMap::new(),
        }
    }
}

impl Recorder {
    /// Records one request's outcome and latency.
    pub fn record(&mut self, outcome: &Outcome, latency: Duration) {
        match outcome {
            Outcome::Ok | Outcome::Placed(_) => {
                self.ok += 1;
                let micros = u64::try_from(latency.as_micros())
                    .unwrap_or(MAX_MICROS)
                    .clamp(1, MAX_MICROS);
                self.latencies
                    .record(micros)
                    .expect("clamped into the histogram's range");
            }
            Outcome::Failed(kind) => *self.errors.entry(kind.clone()).or_default() += 1,
        }
    }

    /// Adds another recorder's measurements to this one.
    pub fn merge(&mut self, other: Self) {
        self.latencies
            .add(other.latencies)
            .expect("histograms with the same bounds");
        self.ok += other.ok;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    #[serde(rename = "p99.9")]
    pub p999: f64,
    pub max: f64,
}

/// A run's results.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub scenario: Scenario,
    pub target: String,
    /// `closed` or `open`.
    pub mode: &'static str,
    pub connections: usize,
    /// The open loop's rate.
    pub rate: Option<f64>,
    pub measured_seconds: f64,
    /// Successful requests.
    pub requests: u64,
    /// Successful requests per second.
    pub requests_per_second: f64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    pub latency_ms: Latency,
}

impl Report {
    pub(crate) fn new(
        target: &Target,
        scenario: Scenario,
        shape: &LoadShape,
        measured: Duration,
        recorder: Recorder,
    ) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let at = |quantile: f64| ms(recorder.latencies.value_at_quantile(quantile));
        let seconds = measured.as_secs_f64();
        Self {
            scenario,
            target: target.to_string(),
            mode: if shape.rate.is_some() { "open" } else { "closed" },
            connections: shape.connections,
            rate: shape.rate,
            measured_seconds: seconds,
            requests: recorder.ok,
            requests_per_second: if seconds > 0.0 {
                recorder.ok as f64 / seconds
            } else {
                0.0
            },
            latency_ms: Latency {
                p50: at(0.50),
                p90: at(0.90),
                p99: at(0.99),
                p999: at(0.999),
                max: ms(recorder.latencies.max()),
            },
            errors: recorder.errors,
        }
    }

    /// Failed requests, all kinds.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The report as a few lines for a person.
    pub fn table(&self) -> String {
        let rate = self.rate.map(|rate| format!(" at {rate}/s")).unwrap_or_default();
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(kind, n)| format!("{kind}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let l = &self.latency_ms;
        format!(
            "{:?} → {} ({} loop{rate}, {} connections, {:.1} s measured)\n  \
             requests   {} ok, {:.0}/s\n  \
             latency    p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms\n  \
             errors     {errors}",
            self.scenario,
            self.target,
            self.mode,
            self.connections,
            self.measured_seconds,
            self.requests,
            self.requests_per_second,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max
        )
    }
}
