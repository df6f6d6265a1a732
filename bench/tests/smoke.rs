//! A short run of every scenario against a real edge and replicas, and of
//! gRPC straight at restaurant-svc: the generator works end to end and the
//! stack answers every request. Speed is measured in BENCHMARKS.md, never
//! here.

use bench::{load::LoadShape, scenario::Scenario, suite::SuiteSettings, target::Target};
use edge::auth::{Principal, Role, dev};
use std::time::Duration;
use test_support::process::{ServiceProcess, binary};

const SCENARIOS: [Scenario; 6] = [
    Scenario::Read,
    Scenario::Menu,
    Scenario::List,
    Scenario::Order,
    Scenario::Lifecycle,
    Scenario::Mixed,
];

#[tokio::test(flavor = "multi_thread")]
async fn every_scenario_runs_without_errors() {
    let data = tempfile::tempdir().unwrap();
    let store = |name: &str| format!("sqlite://{}/{name}.db", data.path().display());
    let service = |name: &'static str, extra: Vec<String>| {
        let url = store(name.trim_end_matches("-svc"));
        async move {
            let mut args = vec![
                "--listen".to_owned(),
                "127.0.0.1:0".to_owned(),
                "--database-url".to_owned(),
                url,
            ];
            args.extend(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ServiceProcess::start(&binary(name), &args).await
        }
    };
    let restaurant = service("restaurant-svc", vec![]).await;
    let notify = service("notify-svc", vec![]).await;
    let order = service(
        "order-svc",
        vec![
            "--restaurant-addr".into(),
            restaurant.addr().to_string(),
            "--notify-addr".into(),
            notify.addr().to_string(),
        ],
    )
    .await;
    // The edge trusts a key made for the test, as the launcher's trusts
    // its own; the load is an admin's.
    let keys = tempfile::tempdir().unwrap();
    let key = stack::signing_key(keys.path()).unwrap();
    let admin = Principal::new("bench".into(), Role::Admin, vec![]).unwrap();
    let token = key.sign(&admin, dev::ISSUER, dev::AUDIENCE, Duration::from_secs(600));
    let mut edge_args = stack::edge_auth_args(keys.path());
    edge_args.extend([
        // One caller, as fast as it can.
        "--rate-limit-reads".to_owned(),
        "0".to_owned(),
        "--rate-limit-writes".to_owned(),
        "0".to_owned(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--restaurant-replicas".to_owned(),
        restaurant.addr().to_string(),
        "--order-replicas".to_owned(),
        order.addr().to_string(),
        "--notify-replicas".to_owned(),
        notify.addr().to_string(),
    ]);
    let edge_args: Vec<&str> = edge_args.iter().map(String::as_str).collect();
    let edge = ServiceProcess::start(&binary("edge"), &edge_args).await;

    let shape = LoadShape {
        connections: 4,
        grpc_connections: 2,
        rate: None,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(500),
        max_requests: None,
        request_timeout: Duration::from_secs(5),
        token: Some(token.into()),
    };
    let http: Target = format!("http://{}", edge.addr()).parse().unwrap();
    let catalog = test_support::eventually(
        "the edge to serve the catalog",
        Duration::from_secs(10),
        || async { bench::discover_catalog(&http).await.ok() },
    )
    .await;
    for scenario in SCENARIOS {
        let report = bench::load::run(&http, scenario, catalog.clone(), &shape)
            .await
            .unwrap();
        assert!(report.requests > 0, "{}", report.table());
        assert_eq!(report.error_count(), 0, "{}", report.table());
    }

    let open = LoadShape {
        rate: Some(100.0),
        ..shape.clone()
    };
    let report = bench::load::run(&http, Scenario::Read, catalog, &open)
        .await
        .unwrap();
    assert_eq!(report.error_count(), 0, "{}", report.table());
    assert!(
        (40..=60).contains(&report.requests),
        "100/s for 0.5 s: {}",
        report.table()
    );

    let grpc: Target = format!("grpc://{}", restaurant.addr()).parse().unwrap();
    let catalog = bench::discover_catalog(&grpc).await.unwrap();
    let report = bench::load::run(&grpc, Scenario::Read, catalog.clone(), &shape)
        .await
        .unwrap();
    assert!(
        report.requests > 0 && report.error_count() == 0,
        "{}",
        report.table()
    );
    let refused = bench::load::run(&grpc, Scenario::Order, catalog, &shape)
        .await
        .unwrap_err();
    assert!(refused.contains("against the edge"), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_suite_runs_end_to_end() {
    let settings = SuiteSettings {
        shape: LoadShape {
            connections: 4,
            grpc_connections: 2,
            rate: None,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(300),
            max_requests: None,
            request_timeout: Duration::from_secs(5),
            token: None,
        },
        rounds: 2,
        idle_connections: 20,
    };
    let (stack, bench) = (binary("stack"), binary("bench"));
    let report = bench::suite::run(stack.as_ref(), bench.as_ref(), &settings)
        .await
        .unwrap();
    let markdown = report.markdown();

    assert_eq!(report.measurements.len(), 11, "{markdown}");
    for measurement in &report.measurements {
        let run = &measurement.report;
        assert!(run.requests > 0 && run.error_count() == 0, "{markdown}");
    }
    let runs: Vec<(&str, usize)> = report
        .measurements
        .iter()
        .map(|m| (m.what.as_str(), m.runs))
        .collect();
    let in_rounds = |what: &str| {
        runs.iter()
            .filter(|(w, runs)| w.starts_with(what) && *runs == 2)
            .count()
    };
    assert_eq!(in_rounds("1."), 1, "the ratios' four run in rounds: {runs:?}");
    assert_eq!(in_rounds("4. edge, 1 replica"), 1, "{runs:?}");
    assert_eq!(in_rounds("5."), 1, "orders run in rounds: {runs:?}");
    assert_eq!(in_rounds("6."), 2, "the open-loop pair runs in rounds: {runs:?}");
    assert_eq!(report.ratios.len(), 3);
    for ratio in &report.ratios {
        let spread = ratio.spread;
        assert!(spread.min > 0.0 && spread.max.is_finite(), "{markdown}");
    }
    let added = &report.added_latency;
    assert!(added.rate > 0.0 && added.p99_ms.median.is_finite(), "{markdown}");
    let idle = report.idle.as_ref().expect("idle connections were held");
    assert!(idle.connections == 20 && idle.rss_holding_mib > 0.0, "{markdown}");
    // Two replicas of each service, two reference servers, and the
    // launcher's two edges in front of two replicas and two of one.
    assert_eq!(report.peak_rss_mib.len(), 12, "every process: {markdown}");
    let edges_of_one = report
        .peak_rss_mib
        .iter()
        .filter(|(name, _)| name.starts_with("edge") && name.ends_with("(1 replica each)"))
        .count();
    assert_eq!(edges_of_one, 2, "{markdown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fan_out_runs_end_to_end() {
    let settings = bench::fanout::FanoutSettings {
        subscribers: vec![10, 30],
        rate: 200.0,
    };
    let report = bench::fanout::run(binary("stack").as_ref(), &settings)
        .await
        .unwrap();
    let markdown = report.markdown();
    assert_eq!(report.levels.len(), 2, "{markdown}");
    for level in &report.levels {
        assert_eq!(
            (level.opened, level.delivered),
            (level.subscribers, level.subscribers),
            "every stream opened and got its event: {markdown}"
        );
        assert!(
            level.delay_ms[1] >= level.delay_ms[0] && level.edge_mib[0] > 0.0 && level.notify_mib[0] > 0.0,
            "{markdown}"
        );
    }
}

/// `bench scale` on a small seed, on `store`: every query answers, and
/// finds what was seeded.
async fn the_scale_measurement_runs_on(store: bench::scale::ScaleStore) {
    let settings = bench::scale::ScaleSettings {
        seed: bench::seed::SeedSettings {
            orders: 2_000,
            notifications: 6_000,
            restaurants: 5,
            customers: 50,
        },
        store,
        requests: 5,
    };
    let report = bench::scale::run(binary("stack").as_ref(), &settings)
        .await
        .unwrap();
    let markdown = report.markdown();
    assert!(report.shapes.len() > 20, "{markdown}");
    for shape in &report.shapes {
        assert_eq!(shape.errors, 0, "every query answered: {markdown}");
        // What was seeded is what the stack serves: every query but those
        // asking for nobody finds something.
        let finds = !shape.query.contains("nobody");
        assert_eq!(shape.found > 0, finds, "{markdown}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scale_measurement_runs_end_to_end() {
    the_scale_measurement_runs_on(bench::scale::ScaleStore::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scale_measurement_runs_end_to_end_on_postgres() {
    if test_support::postgres::skipped() {
        return;
    }
    the_scale_measurement_runs_on(bench::scale::ScaleStore::Postgres).await;
}
