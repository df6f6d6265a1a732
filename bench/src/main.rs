use bench::{load::LoadShape, scenario::Scenario, suite::SuiteSettings, target::Target};
use clap::{Parser, Subcommand};
use std::time::Duration;

/// dishpatch's load generator.
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drives one scenario at one target and reports what it measured.
    Run(RunArgs),
    /// Starts the services, the edges (the launcher's two, in front of one
    /// replica of each and again in front of two) and two reference servers
    /// on free ports and measures them back to back (needs `cargo build --release`
    /// first, for the `stack` binary); prints Markdown for BENCHMARKS.md.
    Suite(SuiteArgs),
    /// Serves a reference server the suite measures against.
    Serve(ServeArgs),
    /// Starts the stack on free ports and measures live notification
    /// streams at scale: N subscribers through the edge, the delay from an
    /// order's move to its event, and the edge's and notify-svc's memory
    /// (needs `cargo build --release` first); prints Markdown.
    Fanout(FanoutArgs),
    /// Fills order-svc's and notify-svc's stores (new or empty ones) with a
    /// year of orders and their notifications, fast.
    Seed(SeedArgs),
    /// Seeds stores of its own, starts the stack on them, and times every
    /// list and filter of the API one request at a time (needs `cargo build
    /// --release` first); prints Markdown.
    Scale(ScaleArgs),
}

/// How much `seed` and `scale` put in the stores.
#[derive(Debug, clap::Args)]
struct SeedAmounts {
    /// Orders.
    #[arg(long, default_value_t = 1_000_000)]
    orders: usize,

    /// Notifications, spread over the orders.
    #[arg(long, default_value_t = 3_000_000)]
    notifications: usize,

    /// Restaurants the orders are from.
    #[arg(long, default_value_t = 100)]
    restaurants: usize,

    /// Customers who placed them.
    #[arg(long, default_value_t = 20_000)]
    customers: usize,
}

impl SeedAmounts {
    fn settings(&self) -> bench::seed::SeedSettings {
        bench::seed::SeedSettings {
            orders: self.orders,
            notifications: self.notifications,
            restaurants: self.restaurants,
            customers: self.customers,
        }
    }
}

#[derive(Debug, clap::Args)]
struct SeedArgs {
    /// order-svc's store (sqlite://… or postgres://…).
    #[arg(long)]
    order_store: String,

    /// notify-svc's store.
    #[arg(long)]
    notify_store: String,

    #[command(flatten)]
    amounts: SeedAmounts,
}

#[derive(Debug, clap::Args)]
struct ScaleArgs {
    #[command(flatten)]
    amounts: SeedAmounts,

    /// Requests of each shape of query measured.
    #[arg(long, default_value_t = 200)]
    requests: usize,

    /// The services' store: SQLite files, or a PostgreSQL cluster made for
    /// the run (Debian's server binaries; as root, run as its `postgres`
    /// user).
    #[arg(long, value_enum, default_value_t = bench::scale::ScaleStore::Sqlite)]
    store: bench::scale::ScaleStore,

    /// The `stack` binary; by default the one beside this one.
    #[arg(long)]
    stack: Option<std::path::PathBuf>,

    /// Print the report as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct FanoutArgs {
    /// Subscribers, one measurement per number, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,2000,5000")]
    subscribers: Vec<usize>,

    /// Orders moved a second while the streams are open.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,

    /// The `stack` binary; by default the one beside this one.
    #[arg(long)]
    stack: Option<std::path::PathBuf>,

    /// Print the report as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct SuiteArgs {
    /// Concurrent connections per measurement.
    #[arg(long, default_value_t = 64)]
    connections: usize,

    /// Load before each measurement (e.g. 2s).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,

    /// Length of each measurement (e.g. 6s).
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    duration: Duration,

    /// Rounds of the four measurements behind the ratios (the report gives
    /// their medians).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,

    /// Idle keep-alive connections to hold at the edges in front of one
    /// replica, for their memory; 0 skips that part.
    #[arg(long, default_value_t = 5000)]
    idle_connections: usize,

    /// The `stack` binary; by default the one beside this one.
    #[arg(long)]
    stack: Option<std::path::PathBuf>,

    /// Print the report as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Which reference server.
    #[arg(value_enum)]
    baseline: bench::baseline::Baseline,

    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,

    /// restaurant-svc's host:port, for the passthrough.
    #[arg(long)]
    restaurant: Option<String>,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Where to send the load: http://host:port (an edge's REST API) or
    /// grpc://host:port (restaurant-svc; read, menu and list only).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    target: Target,

    /// What to send.
    #[arg(long, value_enum, default_value_t = Scenario::Read)]
    scenario: Scenario,

    /// Concurrent workers: HTTP/1.1 connections, or gRPC streams in flight.
    #[arg(long, default_value_t = 64)]
    connections: usize,

    /// HTTP/2 connections shared by the gRPC workers.
    #[arg(long, default_value_t = 4)]
    grpc_connections: usize,

    /// Requests per second for an open loop (latency counted from each
    /// request's due time); without it, a closed loop.
    #[arg(long)]
    rate: Option<f64>,

    /// Load before measuring starts (e.g. 2s).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,

    /// How long to measure (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,

    /// Stop after this many measured requests, if sooner.
    #[arg(long)]
    requests: Option<u64>,

    /// How long one request may take before it counts as a timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,

    /// A bearer token every request carries: the edge takes orders only
    /// from a signed-in caller (`stack token --role admin` prints one for
    /// the launcher's stack).
    #[arg(long, env = "BENCH_TOKEN")]
    token: Option<String>,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Run(args) => run(args).await,
        Command::Suite(args) => suite(args).await,
        Command::Fanout(args) => fanout(args).await,
        Command::Seed(args) => {
            bench::seed::seed(&args.order_store, &args.notify_store, &args.amounts.settings()).await?;
            Ok(())
        }
        Command::Scale(args) => scale(args).await,
        Command::Serve(args) => {
            Ok(bench::baseline::serve(args.baseline, args.listen, args.restaurant).await?)
        }
    }
}

async fn fanout(args: FanoutArgs) -> Result<(), Box<dyn std::error::Error>> {
    let stack = stack_binary(args.stack)?;
    let settings = bench::fanout::FanoutSettings {
        subscribers: args.subscribers,
        rate: args.rate,
    };
    let report = bench::fanout::run(&stack, &settings).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.markdown());
    }
    Ok(())
}

async fn scale(args: ScaleArgs) -> Result<(), Box<dyn std::error::Error>> {
    let stack = stack_binary(args.stack)?;
    let settings = bench::scale::ScaleSettings {
        seed: args.amounts.settings(),
        store: args.store,
        requests: args.requests,
    };
    let report = bench::scale::run(&stack, &settings).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.markdown());
    }
    Ok(())
}

/// The `stack` binary the measurements start: `given`, or the one beside
/// this one.
fn stack_binary(given: Option<std::path::PathBuf>) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let stack = match given {
        Some(stack) => stack,
        None => std::env::current_exe()?.with_file_name("stack"),
    };
    if !stack.is_file() {
        return Err(format!(
            "{} is missing: run `cargo build --release` first",
            stack.display()
        )
        .into());
    }
    Ok(stack)
}

async fn suite(args: SuiteArgs) -> Result<(), Box<dyn std::error::Error>> {
    let bench = std::env::current_exe()?;
    let stack = stack_binary(args.stack)?;
    let settings = SuiteSettings {
        shape: LoadShape {
            connections: args.connections,
            grpc_connections: 4,
            rate: None,
            warmup: args.warmup,
            duration: args.duration,
            max_requests: None,
            request_timeout: Duration::from_secs(10),
            // The suite signs its own, with its stack's key.
            token: None,
        },
        rounds: usize::from(args.rounds),
        idle_connections: args.idle_connections,
    };
    let report = bench::suite::run(&stack, &bench, &settings).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.markdown());
    }
    Ok(())
}

async fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.connections == 0 || args.rate.is_some_and(|rate| rate <= 0.0) {
        return Err("--connections and --rate must be positive".into());
    }
    let shape = LoadShape {
        connections: args.connections,
        grpc_connections: args.grpc_connections,
        rate: args.rate,
        warmup: args.warmup,
        duration: args.duration,
        max_requests: args.requests,
        request_timeout: args.timeout,
        token: args.token.map(Into::into),
    };
    let catalog = bench::discover_catalog(&args.target).await?;
    let report = bench::load::run(&args.target, args.scenario, catalog, &shape).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.table());
    }
    Ok(())
}
