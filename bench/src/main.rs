use bench::{load::LoadShape, scenario::Scenario, target::Target};
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

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Command::Run(args) = Cli::parse().command;
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
