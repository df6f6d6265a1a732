//! `bench suite`: starts everything it measures on free ports, then
//! measures back to back, in one run on one machine, so the figures can be
//! compared as ratios:
//!
//! 1. the ceiling (a fixed JSON answer, no downstream call);
//! 2. the minimal passthrough (one tonic call per request, nothing else);
//! 3. gRPC straight at restaurant-svc (one replica);
//! 4. the edge in front of one restaurant-svc replica and in front of two,
//!    `read` and `list`;
//! 5. `order` and `mixed` through the edge with two replicas of everything.
//!
//! Services and edges run as `stack serve …` (the release `stack` binary);
//! the reference servers as `bench serve …`. Every process's peak RSS is
//! read from /proc at the end.

use crate::{load::LoadShape, report::Report, scenario::Scenario, target::Target};
use serde::Serialize;
use std::{fmt::Write, net::SocketAddr, path::Path, process::Stdio, time::Duration};
use tokio::process::Child;

/// A process the suite started.
#[derive(Debug)]
struct Started {
    name: String,
    child: Child,
    addr: SocketAddr,
}

impl Started {
    async fn new(name: &str, program: &Path, args: &[&str]) -> Result<Self, String> {
        let program = program.to_str().ok_or("program paths are UTF-8")?;
        let (child, addr) =
            dishpatch::child::start_listening(program, args, &[], Stdio::null(), Duration::from_secs(30))
                .await?;
        Ok(Self {
            name: name.to_owned(),
            child,
            addr,
        })
    }

    /// Its peak resident set so far, in MiB (VmHWM).
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }
}

/// One measurement of the suite.
#[derive(Debug, Serialize)]
pub struct Measurement {
    /// What was measured, as in the module docs.
    pub what: String,
    /// The run.
    pub report: Report,
}

/// Everything a suite run measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuiteReport {
    pub measurements: Vec<Measurement>,
    /// Edge read (1 replica) over ceiling, passthrough and direct gRPC.
    pub ratios: Vec<(String, f64)>,
    /// Peak RSS of every process, MiB.
    pub peak_rss_mib: Vec<(String, f64)>,
}

/// Runs the suite with `shape` per measurement; `stack` and `bench` are the
/// release binaries to start.
pub async fn run(stack: &Path, bench: &Path, shape: &LoadShape) -> Result<SuiteReport, String> {
    let data = std::env::temp_dir().join(format!("dishpatch-suite-{}", std::process::id()));
    std::fs::create_dir_all(&data).map_err(|error| format!("creating {}: {error}", data.display()))?;
    let store = |name: &str| format!("sqlite://{}/{name}.db", data.display());
    let any = "127.0.0.1:0";

    let mut started = Vec::new();
    let restaurant_store = store("restaurant");
    for name in ["restaurant-svc#1", "restaurant-svc#2"] {
        let args = [
            "serve",
            "restaurant-svc",
            "--listen",
            any,
            "--database-url",
            &restaurant_store,
        ];
        started.push(Started::new(name, stack, &args).await?);
    }
    let notify_store = store("notify");
    for name in ["notify-svc#1", "notify-svc#2"] {
        let args = [
            "serve",
            "notify-svc",
            "--listen",
            any,
            "--database-url",
            &notify_store,
        ];
        started.push(Started::new(name, stack, &args).await?);
    }
    let addr = |started: &[Started], name: &str| {
        started
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.addr.to_string())
            .expect("started")
    };
    let (r1, r2, n1, n2) = (
        addr(&started, "restaurant-svc#1"),
        addr(&started, "restaurant-svc#2"),
        addr(&started, "notify-svc#1"),
        addr(&started, "notify-svc#2"),
    );
    let (restaurants, notifications, order_store) =
        (format!("{r1},{r2}"), format!("{n1},{n2}"), store("order"));
    for name in ["order-svc#1", "order-svc#2"] {
        let args = [
            "serve",
            "order-svc",
            "--listen",
            any,
            "--database-url",
            &order_store,
            "--restaurant-addr",
            &restaurants,
            "--notify-addr",
            &notifications,
        ];
        started.push(Started::new(name, stack, &args).await?);
    }
    let (o1, o2) = (addr(&started, "order-svc#1"), addr(&started, "order-svc#2"));
    let orders = format!("{o1},{o2}");
    let edge_one = [
        "serve",
        "edge",
        "--listen",
        any,
        "--restaurant-replicas",
        &r1,
        "--order-replicas",
        &o1,
        "--notify-replicas",
        &n1,
    ];
    started.push(Started::new("edge (1 replica each)", stack, &edge_one).await?);
    let edge_two = [
        "serve",
        "edge",
        "--listen",
        any,
        "--restaurant-replicas",
        &restaurants,
        "--order-replicas",
        &orders,
        "--notify-replicas",
        &notifications,
    ];
    started.push(Started::new("edge (2 replicas each)", stack, &edge_two).await?);
    started.push(Started::new("ceiling", bench, &["serve", "ceiling", "--listen", any]).await?);
    started.push(
        Started::new(
            "passthrough",
            bench,
            &["serve", "passthrough", "--listen", any, "--restaurant", &r1],
        )
        .await?,
    );

    let http = |name: &str| -> Target {
        format!("http://{}", addr(&started, name))
            .parse()
            .expect("an address")
    };
    let edge_two_target = http("edge (2 replicas each)");
    let catalog = wait_for_catalog(&edge_two_target).await?;
    let plan: [(&str, Target, Scenario); 9] = [
        ("1. ceiling", http("ceiling"), Scenario::Read),
        ("2. passthrough", http("passthrough"), Scenario::Read),
        (
            "3. gRPC to restaurant-svc",
            format!("grpc://{r1}").parse().expect("an address"),
            Scenario::Read,
        ),
        (
            "4. edge, 1 replica",
            http("edge (1 replica each)"),
            Scenario::Read,
        ),
        (
            "4. edge, 1 replica",
            http("edge (1 replica each)"),
            Scenario::List,
        ),
        ("4. edge, 2 replicas", edge_two_target.clone(), Scenario::Read),
        ("4. edge, 2 replicas", edge_two_target.clone(), Scenario::List),
        ("5. edge, 2 replicas", edge_two_target.clone(), Scenario::Order),
        ("5. edge, 2 replicas", edge_two_target, Scenario::Mixed),
    ];
    let mut measurements = Vec::new();
    for (what, target, scenario) in plan {
        eprintln!("measuring {what}: {scenario:?} …");
        let report = crate::load::run(&target, scenario, catalog.clone(), shape).await?;
        measurements.push(Measurement {
            what: what.to_owned(),
            report,
        });
    }

    let rate = |index: usize| measurements[index].report.requests_per_second;
    let ratios = vec![
        ("edge read / ceiling (4/1)".to_owned(), rate(3) / rate(0)),
        ("edge read / passthrough (4/2)".to_owned(), rate(3) / rate(1)),
        ("edge read / direct gRPC (4/3)".to_owned(), rate(3) / rate(2)),
    ];
    let peak_rss_mib = started
        .iter()
        .filter_map(|s| Some((s.name.clone(), s.peak_rss_mib()?)))
        .collect();
    drop(started);
    std::fs::remove_dir_all(&data).ok();
    Ok(SuiteReport {
        measurements,
        ratios,
        peak_rss_mib,
    })
}

/// The edge answers 503 until its probes find the replicas.
async fn wait_for_catalog(target: &Target) -> Result<crate::scenario::Catalog, String> {
    let mut last = String::new();
    for _ in 0..100 {
        match crate::discover_catalog(target).await {
            Ok(catalog) => return Ok(catalog),
            Err(error) => last = error,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the edge did not serve the catalog: {last}"))
}

impl SuiteReport {
    /// The report as Markdown tables, for BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| measurement | scenario | requests/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for Measurement { what, report } in &self.measurements {
            let l = &report.latency_ms;
            let _ = writeln!(
                out,
                "| {what} | {:?} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                report.scenario,
                report.requests_per_second,
                l.p50,
                l.p90,
                l.p99,
                l.p999,
                l.max,
                report.error_count()
            );
        }
        out.push_str("\n| ratio | value |\n|---|---:|\n");
        for (name, value) in &self.ratios {
            let _ = writeln!(out, "| {name} | {:.0}% |", value * 100.0);
        }
        out.push_str("\n| process | peak RSS (MiB) |\n|---|---:|\n");
        for (name, mib) in &self.peak_rss_mib {
            let _ = writeln!(out, "| {name} | {mib:.1} |");
        }
        out
    }
}
