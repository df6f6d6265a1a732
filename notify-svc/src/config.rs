//! notify-svc's settings: flags, each with an environment fallback.

use std::{net::SocketAddr, time::Duration};

/// notify-svc: the notification log and its live stream, over gRPC.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "notify-svc", version)]
pub struct Config {
    /// Address to serve gRPC on (port 0 picks a free port). Use
    /// 0.0.0.0:50053 to accept other machines.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50053")]
    pub listen: SocketAddr,

    /// Store URL: sqlite://path/to/file.db (created if missing) or
    /// postgres://user:password@host/database. Replicas share one store.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://data/notify.db"
    )]
    pub database_url: String,

    /// How often to look for notifications recorded by other replicas, for
    /// live subscribers (e.g. 200ms). Those recorded here are sent at once.
    #[arg(long, env = "POLL_INTERVAL", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,

    /// On shutdown, how long to keep answering after health turns
    /// NOT_SERVING, so balancers move away first (e.g. 5s, 200ms).
    #[arg(long, env = "DRAIN_PERIOD", default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    #[command(flatten)]
    pub tls: dishpatch::tls::ServeTlsArgs,
}
