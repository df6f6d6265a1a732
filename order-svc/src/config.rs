//! order-svc's settings: flags, each with an environment fallback.

use dishpatch_pool::ReplicaSpec;
use std::{net::SocketAddr, time::Duration};

/// order-svc: orders and their life cycle, over gRPC.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "order-svc", version)]
pub struct Config {
    /// Address to serve gRPC on (port 0 picks a free port). Use
    /// 0.0.0.0:50052 to accept other machines.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50052")]
    pub listen: SocketAddr,

    /// Store URL: sqlite://path/to/file.db (created if missing) or
    /// postgres://user:password@host/database. Replicas share one store.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://data/order.db"
    )]
    pub database_url: String,

    /// restaurant-svc replicas, which price orders: host:port, or
    /// dns://name:port for every address a DNS name resolves to, comma
    /// separated. Calls are balanced over the healthy ones.
    #[arg(
        long,
        env = "RESTAURANT_ADDR",
        value_delimiter = ',',
        default_value = "127.0.0.1:50051"
    )]
    pub restaurant_addr: Vec<ReplicaSpec>,

    /// notify-svc replicas, where the outbox relay delivers notifications:
    /// as for --restaurant-addr.
    #[arg(
        long,
        env = "NOTIFY_ADDR",
        value_delimiter = ',',
        default_value = "127.0.0.1:50053"
    )]
    pub notify_addr: Vec<ReplicaSpec>,

    /// Time between health probes of each restaurant-svc and notify-svc
    /// replica (e.g. 2s). A failed call takes a replica out at once.
    #[arg(long, env = "PROBE_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub probe_interval: Duration,

    /// How long one probe of a restaurant-svc or notify-svc replica (or a
    /// connect to one) may take (e.g. 1s).
    #[arg(long, env = "PROBE_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub probe_timeout: Duration,

    /// Time allowed for a call to another service when the caller set no
    /// deadline (e.g. 3s).
    #[arg(long, env = "DOWNSTREAM_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub downstream_timeout: Duration,

    /// How often the outbox relay looks for notifications written by other
    /// replicas or left undelivered (e.g. 500ms). Those written here are
    /// relayed at once.
    #[arg(long, env = "RELAY_POLL_INTERVAL", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub relay_poll_interval: Duration,

    /// How long a notification queued by another replica waits before
    /// this replica's relay delivers it too (e.g. 2s): each replica relays
    /// what its own writes queue, and takes over another's only once that
    /// one has had this long (it stopped, or is stuck).
    #[arg(long, env = "RELAY_TAKEOVER", default_value = "2s", value_parser = humantime::parse_duration)]
    pub relay_takeover: Duration,

    /// The longest the outbox relay waits between attempts while notify-svc
    /// is down; waits double from 100ms up to this (e.g. 5s).
    #[arg(long, env = "RELAY_MAX_BACKOFF", default_value = "5s", value_parser = humantime::parse_duration)]
    pub relay_max_backoff: Duration,

    /// On shutdown, how long to keep answering after health turns
    /// NOT_SERVING, so balancers move away first (e.g. 5s, 200ms).
    #[arg(long, env = "DRAIN_PERIOD", default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    #[command(flatten)]
    pub tls: dishpatch::tls::ServeTlsArgs,
}
