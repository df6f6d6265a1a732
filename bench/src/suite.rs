//! `bench suite`: starts everything it measures on free ports, then
//! measures back to back, in one run on one machine, so the figures can be
//! compared as ratios:
//!
//! 1. the ceiling (a fixed JSON answer, no downstream call);
//! 2. the minimal passthrough (one tonic call per request, nothing else);
//! 3. gRPC straight at restaurant-svc (one replica);
//! 4. the edge in front of one restaurant-svc replica and in front of two,
//!    `read` and `list`: as the launcher runs it, two edge processes (one
//!    thread each) sharing one listening socket;
//! 5. `order` and `mixed` through the edge with two replicas of everything;
//! 6. the latency the edge adds: `read` in an open loop at half the edge's
//!    peak rate, through the edge and straight at restaurant-svc;
//! 7. the edges' memory holding thousands of idle keep-alive connections.
//!
//! On a small shared machine one run of anything drifts by ±20%, so what
//! the targets are judged on runs in rounds: the four measurements behind
//! the ratios (1–3 and the edge's `read` with one replica) interleaved, the
//! open-loop pair interleaved, and `order` back to back. The suite reports
//! the median run of each, and each ratio and latency difference as the
//! median and range of its per-round values.
//!
//! Services and edges run as `stack serve …` (the release `stack` binary);
//! the reference servers as `bench serve …`. Every process's peak RSS is
//! read from /proc before the idle connections are opened.

use crate::{idle::IdleConnections, load::LoadShape, report::Report, scenario::Scenario, target::Target};
use edge::auth::{Principal, Role, dev};
use serde::Serialize;
use stack::{Layout, Part, Plan, Process};
use std::{
    fmt::Write, net::SocketAddr, os::fd::OwnedFd, path::Path, process::Stdio, sync::Arc, time::Duration,
};
use tokio::process::{Child, Command};

/// A process the suite started.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) name: String,
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Started {
    /// `stack serve` running `process` of the plan; an edge given `socket`
    /// serves that listening socket, shared with other edges.
    pub(crate) async fn serve(
        name: &str,
        stack: &Path,
        process: &Process,
        socket: Option<&OwnedFd>,
    ) -> Result<Self, String> {
        let mut command = Command::new(stack);
        command
            .arg("serve")
            .arg(process.part.name())
            .args(&process.args)
            .envs(process.env.iter().map(|(name, value)| (name, value)));
        if let Some(socket) = socket {
            stack::edge_socket::pass(&mut command, socket)?;
        }
        Self::start(name, command).await
    }

    async fn start(name: &str, mut command: Command) -> Result<Self, String> {
        command.stderr(Stdio::null());
        let (child, addr) = dishpatch::child::start_listening(command, Duration::from_secs(30)).await?;
        Ok(Self {
            name: name.to_owned(),
            child,
            addr,
        })
    }

    /// Where it answers HTTP.
    fn http_target(&self) -> Result<Target, String> {
        format!("http://{}", self.addr).parse()
    }

    /// Its peak resident set so far, in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        Some(dishpatch::child::resident(self.child.id()?)?.peak_mib)
    }

    /// Its resident set now, in MiB.
    pub(crate) fn rss_mib(&self) -> Option<f64> {
        Some(dishpatch::child::resident(self.child.id()?)?.now_mib)
    }
}

/// Starts every process of `plan` with the `stack` binary, the edges last,
/// sharing one listening socket as the launcher's do.
pub(crate) async fn start_stack(stack: &Path, plan: &Plan) -> Result<Vec<Started>, String> {
    let mut started = start_services(stack, plan).await?;
    let edges: Vec<Process> = plan.replicas(Part::Edge).cloned().collect();
    started.extend(serve_edges(stack, &edges).await?);
    Ok(started)
}

/// Starts every service replica of `plan` with the `stack` binary.
async fn start_services(stack: &Path, plan: &Plan) -> Result<Vec<Started>, String> {
    let mut started = Vec::new();
    for process in plan.processes.iter().filter(|process| process.part != Part::Edge) {
        started.push(Started::serve(&process.name, stack, process, None).await?);
    }
    Ok(started)
}

/// Starts `edges`, each named as given, serving one socket bound at the
/// first's address.
async fn serve_edges(stack: &Path, edges: &[Process]) -> Result<Vec<Started>, String> {
    let Some(first) = edges.first() else {
        return Ok(Vec::new());
    };
    let (socket, _) = stack::edge_socket::bind(first.addr).await?;
    let mut started = Vec::new();
    for edge in edges {
        started.push(Started::serve(&edge.name, stack, edge, Some(&socket)).await?);
    }
    Ok(started)
}

/// An admin's token for an hour, signed with the key of the stack whose
/// data is in `data_dir` (created there if missing).
pub(crate) fn admin_token(data_dir: &Path) -> Result<Arc<str>, String> {
    let admin = Principal::new("bench".to_owned(), Role::Admin, Vec::new())?;
    Ok(stack::signing_key(data_dir)?
        .sign(&admin, dev::ISSUER, dev::AUDIENCE, Duration::from_secs(3600))
        .into())
}

/// How the suite measures.
#[derive(Debug, Clone)]
pub struct SuiteSettings {
    /// The shape of every closed-loop measurement.
    pub shape: LoadShape,
    /// Rounds of what the targets are judged on (see the module docs).
    pub rounds: usize,
    /// Idle keep-alive connections to hold at the edge; 0 skips that part.
    pub idle_connections: usize,
}

/// One measurement of the suite.
#[derive(Debug, Serialize)]
pub struct Measurement {
    /// What was measured, as in the module docs.
    pub what: String,
    /// How many runs it was the median of.
    pub runs: usize,
    /// The run (the median one, by requests/s).
    pub report: Report,
}

/// A figure computed in every round: its median and range.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(per_round: &[f64]) -> Self {
        Self {
            median: median(per_round),
            min: per_round.iter().copied().fold(f64::INFINITY, f64::min),
            max: per_round.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// A ratio of two throughputs measured in the same round.
#[derive(Debug, Serialize)]
pub struct Ratio {
    pub name: String,
    #[serde(flatten)]
    pub spread: Spread,
}

/// How much later answers come through the edge than straight from
/// restaurant-svc, at the same open-loop rate, compared round by round.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddedLatency {
    pub rate: f64,
    pub p50_ms: Spread,
    pub p99_ms: Spread,
}

/// The memory of the edges in front of one replica (together) around
/// holding idle connections.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdleMemory {
    pub connections: usize,
    pub rss_before_mib: f64,
    pub rss_holding_mib: f64,
}

/// Everything a suite run measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuiteReport {
    pub measurements: Vec<Measurement>,
    /// Edge read (1 replica) over ceiling, passthrough and direct gRPC.
    pub ratios: Vec<Ratio>,
    pub added_latency: AddedLatency,
    pub idle: Option<IdleMemory>,
    /// Peak RSS of every process under load, MiB.
    pub peak_rss_mib: Vec<(String, f64)>,
}

/// Where the edge's `read` stands among the four measurements behind the
/// ratios, each of which is the edge's throughput over another's.
const EDGE: usize = 3;

/// How long the suite's token lasts: longer than any suite runs.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Any free port on loopback.
const ANY_PORT: &str = "127.0.0.1:0";

/// Runs the suite; `stack` and `bench` are the release binaries to start.
pub async fn run(stack: &Path, bench: &Path, settings: &SuiteSettings) -> Result<SuiteReport, String> {
    if settings.idle_connections > 0 {
        // The edge inherits the limit; a few hundred spare for everything else.
        crate::idle::raise_fd_limit(settings.idle_connections as u64 + 512)?;
    }
    let data = std::env::temp_dir().join(format!("dishpatch-suite-{}", std::process::id()));
    std::fs::create_dir_all(&data).map_err(|error| format!("creating {}: {error}", data.display()))?;
    // Every request carries an admin's token, as a signed-in client's do:
    // the edge verifies it each time (once, then from its cache).
    let admin = Principal::new("bench".to_owned(), Role::Admin, Vec::new())?;
    let token = stack::signing_key(&data)?.sign(&admin, dev::ISSUER, dev::AUDIENCE, TOKEN_TTL);
    let fleet = Fleet::start(stack, bench, &data).await?;
    let catalog = wait_for_catalog(&fleet.edge_two).await?;
    let mut suite = Suite {
        fleet,
        catalog,
        shape: LoadShape {
            token: Some(token.into()),
            ..settings.shape.clone()
        },
        rounds: settings.rounds.max(1),
        measurements: Vec::new(),
    };
    let ratios = suite.compare_read_paths().await?;
    let edge_peak = suite.measurements[EDGE].report.requests_per_second;
    suite.measure_edges().await?;
    suite.measure_orders().await?;
    let added_latency = suite.measure_added_latency(edge_peak).await?;
    let peak_rss_mib = suite.fleet.peak_rss_mib();
    let idle = suite.measure_idle_memory(settings.idle_connections).await?;
    let measurements = suite.measurements;
    drop(suite.fleet);
    std::fs::remove_dir_all(&data).ok();
    Ok(SuiteReport {
        measurements,
        ratios,
        added_latency,
        idle,
        peak_rss_mib,
    })
}

/// Everything the suite measures, started: the stack's plan (two replicas
/// of each service, sharing SQLite files, and the launcher's edges in front
/// of all of them), as many edges in front of one replica of each, and the
/// two reference servers.
struct Fleet {
    started: Vec<Started>,
    edge_one: Target,
    edge_two: Target,
    ceiling: Target,
    passthrough: Target,
    direct: Target,
}

/// How the names of the edges in front of one replica of each service end.
const ONE_REPLICA: &str = "(1 replica each)";
/// How the names of the edges in front of two replicas of each service end.
const TWO_REPLICAS: &str = "(2 replicas each)";

impl Fleet {
    /// Starts everything. The plan's ports were free when it was made;
    /// should another process take one first, a new plan is tried.
    async fn start(stack: &Path, bench: &Path, data: &Path) -> Result<Self, String> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Self::start_once(stack, bench, data).await {
                Err(error) if attempts < 3 => eprintln!("starting again on other ports: {error}"),
                started => return started,
            }
        }
    }

    async fn start_once(stack: &Path, bench: &Path, data: &Path) -> Result<Self, String> {
        let layout = Layout {
            replicas: 2,
            edge_listen: ANY_PORT.parse().expect("an address"),
            // The edge as users run it: each edge process serves on one
            // thread, and the launcher runs two on one socket.
            edges: stack::DEFAULT_EDGES,
            service_port: 0,
            data_dir: data.to_owned(),
            stores: stack::Stores::Sqlite,
            // Rate limits stay on, at rates the suite's one caller stays
            // under: what they cost is measured, not what they refuse.
            extra_args: vec![(
                Part::Edge,
                [
                    "--rate-limit-reads",
                    "10000000",
                    "--rate-limit-writes",
                    "10000000",
                ]
                .map(str::to_owned)
                .to_vec(),
            )],
        };
        let plan = Plan::new(&layout)?;
        let mut started = start_services(stack, &plan).await?;
        let edges_named = |edge: &Process, suffix: &str| -> Vec<Process> {
            (1..=layout.edges)
                .map(|index| Process {
                    name: format!("edge#{index} {suffix}"),
                    ..edge.clone()
                })
                .collect()
        };
        // The edges of each kind share one address: their first's.
        let mut served_by_edges = |edges: Vec<Started>| -> Result<Target, String> {
            let target = edges.first().ok_or("no edge was started")?.http_target()?;
            started.extend(edges);
            Ok(target)
        };
        let edge_two = plan.replicas(Part::Edge).next().expect("the plan has edges");
        let edge_two = served_by_edges(serve_edges(stack, &edges_named(edge_two, TWO_REPLICAS)).await?)?;
        let edge_one = plan.edge(layout.edge_listen, 1, &layout);
        let edge_one = served_by_edges(serve_edges(stack, &edges_named(&edge_one, ONE_REPLICA)).await?)?;
        let first_restaurant = plan
            .replicas(Part::RestaurantSvc)
            .next()
            .expect("a restaurant-svc replica")
            .addr
            .to_string();
        let reference = |name: &str, args: &[&str]| {
            let mut command = Command::new(bench);
            command
                .arg("serve")
                .arg(name)
                .args(["--listen", ANY_PORT])
                .args(args);
            command
        };
        let ceiling = Started::start("ceiling", reference("ceiling", &[])).await?;
        let passthrough = reference("passthrough", &["--restaurant", &first_restaurant]);
        let passthrough = Started::start("passthrough", passthrough).await?;
        let (ceiling_target, passthrough_target) = (ceiling.http_target()?, passthrough.http_target()?);
        started.extend([ceiling, passthrough]);
        Ok(Self {
            edge_one,
            edge_two,
            ceiling: ceiling_target,
            passthrough: passthrough_target,
            direct: format!("grpc://{first_restaurant}").parse()?,
            started,
        })
    }

    /// The edges in front of one replica of each service.
    fn edges_one(&self) -> impl Iterator<Item = &Started> {
        self.started
            .iter()
            .filter(|started| started.name.ends_with(ONE_REPLICA))
    }

    /// Every process's peak resident set so far, MiB.
    fn peak_rss_mib(&self) -> Vec<(String, f64)> {
        self.started
            .iter()
            .filter_map(|started| Some((started.name.clone(), started.peak_rss_mib()?)))
            .collect()
    }
}

/// The suite's running state: what it measures with, and what it measured.
struct Suite {
    fleet: Fleet,
    catalog: crate::scenario::Catalog,
    shape: LoadShape,
    rounds: usize,
    measurements: Vec<Measurement>,
}

impl Suite {
    /// One run of `scenario` at `target`.
    async fn measure(
        &self,
        target: &Target,
        scenario: Scenario,
        shape: &LoadShape,
    ) -> Result<Report, String> {
        eprintln!("measuring {target}: {scenario:?} …");
        crate::load::run(target, scenario, self.catalog.clone(), shape).await
    }

    /// Each of `compared` once a round, interleaved; their runs by round.
    async fn interleaved(
        &self,
        compared: &[(&Target, Scenario, &LoadShape)],
    ) -> Result<Vec<Vec<Report>>, String> {
        let mut runs: Vec<Vec<Report>> = compared.iter().map(|_| Vec::new()).collect();
        for _ in 0..self.rounds {
            for ((target, scenario, shape), runs) in compared.iter().zip(&mut runs) {
                runs.push(self.measure(target, *scenario, shape).await?);
            }
        }
        Ok(runs)
    }

    fn record(&mut self, what: &str, runs: Vec<Report>, by: fn(&Report) -> f64) {
        self.measurements.push(Measurement {
            what: what.to_owned(),
            runs: runs.len(),
            report: median_run(runs, by),
        });
    }

    /// 1–4: `read` at the ceiling, the passthrough, restaurant-svc and the
    /// edge with one replica, interleaved; the edge's throughput over each
    /// other's, round by round.
    async fn compare_read_paths(&mut self) -> Result<Vec<Ratio>, String> {
        let fleet = &self.fleet;
        // The edge last (EDGE).
        let compared = [
            ("1. ceiling", &fleet.ceiling),
            ("2. passthrough", &fleet.passthrough),
            ("3. gRPC to restaurant-svc", &fleet.direct),
            ("4. edge, 1 replica", &fleet.edge_one),
        ];
        let shape = self.shape.clone();
        let runs = self
            .interleaved(
                &compared
                    .iter()
                    .map(|(_, target)| (*target, Scenario::Read, &shape))
                    .collect::<Vec<_>>(),
            )
            .await?;
        let ratio = |name: &str, of: usize| {
            let per_round: Vec<f64> = (0..self.rounds)
                .map(|round| runs[EDGE][round].requests_per_second / runs[of][round].requests_per_second)
                .collect();
            Ratio {
                name: name.to_owned(),
                spread: Spread::of(&per_round),
            }
        };
        let ratios = vec![
            ratio("edge read / ceiling (4/1)", 0),
            ratio("edge read / passthrough (4/2)", 1),
            ratio("edge read / direct gRPC (4/3)", 2),
        ];
        let names: Vec<&str> = compared.iter().map(|(name, _)| *name).collect();
        for (what, runs) in names.into_iter().zip(runs) {
            self.record(what, runs, throughput);
        }
        Ok(ratios)
    }

    /// 4: `list` through the edge with one replica; `read` and `list` with
    /// two.
    async fn measure_edges(&mut self) -> Result<(), String> {
        let (one, two) = (self.fleet.edge_one.clone(), self.fleet.edge_two.clone());
        for (what, target, scenario) in [
            ("4. edge, 1 replica", &one, Scenario::List),
            ("4. edge, 2 replicas", &two, Scenario::Read),
            ("4. edge, 2 replicas", &two, Scenario::List),
        ] {
            let run = self.measure(target, scenario, &self.shape).await?;
            self.record(what, vec![run], throughput);
        }
        Ok(())
    }

    /// 5: `order` through the edge with two replicas of everything, in
    /// rounds back to back; then `mixed`.
    async fn measure_orders(&mut self) -> Result<(), String> {
        let two = self.fleet.edge_two.clone();
        let orders = self
            .interleaved(&[(&two, Scenario::Order, &self.shape)])
            .await?
            .pop()
            .expect("one");
        self.record("5. edge, 2 replicas", orders, throughput);
        let mixed = self.measure(&two, Scenario::Mixed, &self.shape).await?;
        self.record("5. edge, 2 replicas", vec![mixed], throughput);
        Ok(())
    }

    /// 6: `read` in an open loop at half the edge's peak, through the edge
    /// and straight at the replica behind it, interleaved; the difference
    /// in latency, round by round.
    async fn measure_added_latency(&mut self, edge_peak: f64) -> Result<AddedLatency, String> {
        let open = LoadShape {
            rate: Some((edge_peak / 2.0).round()),
            ..self.shape.clone()
        };
        let (edge, direct) = (self.fleet.edge_one.clone(), self.fleet.direct.clone());
        let mut pair = self
            .interleaved(&[(&edge, Scenario::Read, &open), (&direct, Scenario::Read, &open)])
            .await?;
        let (straight, through_edge) = (pair.pop().expect("two"), pair.pop().expect("two"));
        let added = |quantile: fn(&Report) -> f64| {
            let per_round: Vec<f64> = through_edge
                .iter()
                .zip(&straight)
                .map(|(edge, direct)| quantile(edge) - quantile(direct))
                .collect();
            Spread::of(&per_round)
        };
        let p99: fn(&Report) -> f64 = |report| report.latency_ms.p99;
        let added_latency = AddedLatency {
            rate: open.rate.unwrap_or_default(),
            p50_ms: added(|report| report.latency_ms.p50),
            p99_ms: added(p99),
        };
        self.record("6. open loop, edge 1 replica", through_edge, p99);
        self.record("6. open loop, gRPC to restaurant-svc", straight, p99);
        Ok(added_latency)
    }

    /// 7: the edge's memory holding `connections` idle keep-alive
    /// connections (none: skipped).
    async fn measure_idle_memory(&self, connections: usize) -> Result<Option<IdleMemory>, String> {
        if connections == 0 {
            return Ok(None);
        }
        eprintln!("holding {connections} idle connections at the edges …");
        let edges_rss_mib = || -> Result<f64, String> {
            self.fleet
                .edges_one()
                .map(|edge| {
                    edge.rss_mib()
                        .ok_or_else(|| "an edge's memory is unreadable".to_owned())
                })
                .sum()
        };
        let rss_before_mib = edges_rss_mib()?;
        let restaurant_id = &self.catalog.restaurants[0].0;
        let held = IdleConnections::open(&self.fleet.edge_one, restaurant_id, connections).await?;
        // Let the edge settle what it allocated while answering.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_holding_mib = edges_rss_mib()?;
        drop(held);
        Ok(Some(IdleMemory {
            connections,
            rss_before_mib,
            rss_holding_mib,
        }))
    }
}

/// A report's throughput, by which measurements pick their median run.
fn throughput(report: &Report) -> f64 {
    report.requests_per_second
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The run with the median figure `by`.
fn median_run(mut runs: Vec<Report>, by: fn(&Report) -> f64) -> Report {
    runs.sort_by(|a, b| by(a).total_cmp(&by(b)));
    runs.swap_remove(runs.len() / 2)
}

/// The edge answers 503 until its probes find the replicas.
pub(crate) async fn wait_for_catalog(target: &Target) -> Result<crate::scenario::Catalog, String> {
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
            "| measurement | scenario | runs | requests/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for Measurement { what, runs, report } in &self.measurements {
            let l = &report.latency_ms;
            let scenario = match report.rate {
                Some(rate) => format!("{:?} at {rate:.0}/s", report.scenario),
                None => format!("{:?}", report.scenario),
            };
            let _ = writeln!(
                out,
                "| {what} | {scenario} | {runs} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                report.requests_per_second,
                l.p50,
                l.p90,
                l.p99,
                l.p999,
                l.max,
                report.error_count()
            );
        }
        out.push_str("\n| ratio (per round) | median | range |\n|---|---:|---:|\n");
        for Ratio { name, spread } in &self.ratios {
            let _ = writeln!(
                out,
                "| {name} | {:.0}% | {:.0}–{:.0}% |",
                spread.median * 100.0,
                spread.min * 100.0,
                spread.max * 100.0
            );
        }
        let AddedLatency { rate, p50_ms, p99_ms } = &self.added_latency;
        let _ = writeln!(
            out,
            "\nLatency the edge adds at {rate:.0} requests/s (open loop), median (range) over the rounds: \
             p50 {:+.2} ms ({:+.2} to {:+.2}), p99 {:+.2} ms ({:+.2} to {:+.2}).",
            p50_ms.median, p50_ms.min, p50_ms.max, p99_ms.median, p99_ms.min, p99_ms.max
        );
        if let Some(IdleMemory {
            connections,
            rss_before_mib,
            rss_holding_mib,
        }) = &self.idle
        {
            let _ = writeln!(
                out,
                "\nThe edges holding {connections} idle keep-alive connections: RSS {rss_holding_mib:.1} MiB together \
                 ({rss_before_mib:.1} MiB before; {:.1} KiB a connection).",
                (rss_holding_mib - rss_before_mib) * 1024.0 / *connections as f64
            );
        }
        out.push_str("\n| process | peak RSS under load (MiB) |\n|---|---:|\n");
        for (name, mib) in &self.peak_rss_mib {
            let _ = writeln!(out, "| {name} | {mib:.1} |");
        }
        out
    }
}
