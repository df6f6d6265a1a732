//! The edge's settings: flags, each with an environment fallback.

use dishpatch_pool::{ReplicaSpec, Strategy};
use std::{net::SocketAddr, time::Duration};

/// Balancing strategies by name, listed in `--help`.
fn strategy() -> impl clap::builder::TypedValueParser<Value = Strategy> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Strategy::NAMES).try_map(|name| name.parse::<Strategy>())
}

/// edge: dishpatch's REST API on port 3000, over balanced gRPC replicas.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "edge", version)]
pub struct Config {
    /// Address to serve HTTP on (port 0 picks a free port). Use
    /// 0.0.0.0:3000 to accept other machines.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// restaurant-svc replicas, comma separated: host:port, or
    /// host:port=weight for weighted balancing. Other hosts work alike.
    #[arg(
        long,
        env = "RESTAURANT_REPLICAS",
        value_delimiter = ',',
        default_value = "127.0.0.1:50051"
    )]
    pub restaurant_replicas: Vec<ReplicaSpec>,

    /// order-svc replicas, as for --restaurant-replicas.
    #[arg(
        long,
        env = "ORDER_REPLICAS",
        value_delimiter = ',',
        default_value = "127.0.0.1:50052"
    )]
    pub order_replicas: Vec<ReplicaSpec>,

    /// notify-svc replicas, as for --restaurant-replicas.
    #[arg(
        long,
        env = "NOTIFY_REPLICAS",
        value_delimiter = ',',
        default_value = "127.0.0.1:50053"
    )]
    pub notify_replicas: Vec<ReplicaSpec>,

    /// How requests to restaurant-svc are balanced.
    #[arg(long, env = "RESTAURANT_BALANCE", default_value = "round-robin", value_parser = strategy())]
    pub restaurant_balance: Strategy,

    /// How requests to order-svc are balanced.
    #[arg(long, env = "ORDER_BALANCE", default_value = "round-robin", value_parser = strategy())]
    pub order_balance: Strategy,

    /// How requests to notify-svc are balanced.
    #[arg(long, env = "NOTIFY_BALANCE", default_value = "round-robin", value_parser = strategy())]
    pub notify_balance: Strategy,

    /// Time between health probes of a replica (e.g. 5s; 100ms for tests).
    #[arg(long, env = "PROBE_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub probe_interval: Duration,

    /// How long one probe (or a connect) may take.
    #[arg(long, env = "PROBE_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub probe_timeout: Duration,

    /// Successful probes in a row that bring a failed replica back.
    #[arg(long = "probe-rise", env = "PROBE_RISE", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub rise: u32,

    /// Failed probes in a row that take a replica out of rotation (a failed
    /// call, or NOT_SERVING, takes it out at once).
    #[arg(long = "probe-fall", env = "PROBE_FALL", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub fall: u32,

    /// Deadline of each request, sent to the services as grpc-timeout.
    #[arg(long, env = "REQUEST_DEADLINE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
}
