//! The edge's settings: flags, each with an environment fallback.

use crate::auth::{KeySource, VerifierSettings};
use dishpatch_pool::{Ejection, Panic, PoolSettings, ProbeSettings, ReplicaSpec, Strategy, TryTimeout};
use http::HeaderValue;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// An origin, `scheme://host[:port]`, as browsers send it in `Origin`.
fn origin(value: &str) -> Result<HeaderValue, String> {
    let uri: http::Uri = value.parse().map_err(|error| format!("{value:?}: {error}"))?;
    let is_origin = matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.host().is_some()
        && uri
            .path_and_query()
            .is_none_or(|path| path.as_str().is_empty() || path.as_str() == "/");
    if !is_origin || value.ends_with('/') {
        return Err(format!(
            "{value:?} is not an origin: scheme://host[:port], no path"
        ));
    }
    HeaderValue::try_from(value).map_err(|error| format!("{value:?}: {error}"))
}

/// A duration greater than zero.
fn positive_duration(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value) {
        Ok(duration) if duration.is_zero() => Err("must be more than 0".to_owned()),
        parsed => parsed.map_err(|error| error.to_string()),
    }
}

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
    /// 0.0.0.0:3000 to accept other machines. A listening socket passed in
    /// by systemd's socket activation (LISTEN_FDS=1, as fd 3) is served
    /// instead: the launcher passes its one socket to each of its edges.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// restaurant-svc replicas, comma separated: host:port, or
    /// host:port=weight for weighted balancing, or dns://name:port for
    /// every address a DNS name resolves to (dns://server/name:port asks
    /// that DNS server). Other hosts work alike.
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

    /// The least time an attempt of a read (or of an order, which carries
    /// an idempotency key) waits for its replica before it is tried on
    /// another: the per-try timeout is four times the replica's recent p99
    /// latency, but no less than this.
    #[arg(long, env = "TRY_TIMEOUT_MIN", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub try_timeout_min: Duration,

    /// Whether a read not answered after the pool's recent p95 latency is
    /// also sent to a second replica (the first answer wins; hedges draw on
    /// the retry budget).
    #[arg(long, env = "HEDGE_READS", default_value_t = true, action = clap::ArgAction::Set)]
    pub hedge_reads: bool,

    /// Server errors (INTERNAL, UNKNOWN, DATA_LOSS) in a row, within 10s,
    /// that take a replica out of rotation until probes bring it back.
    #[arg(long, env = "EJECT_AFTER", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub eject_after: u32,

    /// How long a replica that joins or rejoins the rotation takes to ramp
    /// from a tenth of its share of requests to all of it (0s: at once).
    #[arg(long, env = "SLOW_START", default_value = "10s", value_parser = humantime::parse_duration)]
    pub slow_start: Duration,

    /// Percentage of a service's replicas below which too few are healthy:
    /// said on /health and in the log.
    #[arg(long, env = "PANIC_THRESHOLD", default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub panic_threshold: u8,

    /// Whether a service with no healthy replica still gets requests on
    /// replicas that are out only because requests failed on them (not
    /// draining, not failing probes), rather than answering 503 at once.
    #[arg(long, env = "PANIC_ROUTING", default_value_t = true, action = clap::ArgAction::Set)]
    pub panic_routing: bool,

    /// Whether responses name the replica that answered (x-served-by) and
    /// /health lists every replica with its state. Off by default: it tells
    /// strangers the topology. The launcher turns it on on one machine.
    #[arg(long, env = "SHOW_REPLICAS", default_value_t = false, action = clap::ArgAction::Set)]
    pub show_replicas: bool,

    /// Requests handled at once; past it, requests are refused at once
    /// with 503 and Retry-After rather than queued.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_in_flight: u32,

    /// How long a request body may take to arrive, however slowly it is
    /// sent; past it, 408 and the connection closes.
    #[arg(long, env = "BODY_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: Duration,

    /// Open connections at once; past it, new connections are closed as
    /// they are accepted.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 16_384, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// On shutdown, the edge stops accepting at once (other edges on the
    /// same socket, or behind the same Service, take new connections) and
    /// for this long keeps serving the connections it has, each answer
    /// saying `Connection: close`, so clients move to another edge between
    /// requests rather than finding a connection closed under them. Then
    /// it closes idle connections and finishes the requests in flight.
    #[arg(long, env = "DRAIN_PERIOD", default_value = "2s", value_parser = humantime::parse_duration)]
    pub drain: Duration,

    /// Reads (GETs) a second each caller may make: its principal when
    /// signed in, else its client address; bursts of twice as many. Past
    /// it, 429 with Retry-After. 0: no limit.
    #[arg(long, env = "RATE_LIMIT_READS", default_value_t = 100)]
    pub rate_limit_reads: u32,

    /// Writes (POSTs and PATCHes) a second each caller may make, as for
    /// --rate-limit-reads.
    #[arg(long, env = "RATE_LIMIT_WRITES", default_value_t = 10)]
    pub rate_limit_writes: u32,

    /// Development sign-ins a second each client address may make, as for
    /// --rate-limit-reads.
    #[arg(long, env = "RATE_LIMIT_SIGN_INS", default_value_t = 2)]
    pub rate_limit_sign_ins: u32,

    /// Origins whose web pages may call the API from a browser (CORS), comma
    /// separated, e.g. https://shop.example.com. None by default: only pages
    /// the edge serves itself may.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',', value_parser = origin)]
    pub cors_origins: Vec<HeaderValue>,

    /// How often an idle live notification stream sends a comment line, so
    /// that proxies do not cut it as idle.
    #[arg(long, env = "STREAM_KEEP_ALIVE", default_value = "15s", value_parser = positive_duration)]
    pub stream_keep_alive: Duration,

    /// How long a live notification stream's reader may leave its buffer
    /// (256 notifications) full, taking fewer than that many, before the
    /// stream ends, telling it where to resume.
    #[arg(long, env = "STREAM_STALL_LIMIT", default_value = "10s", value_parser = positive_duration)]
    pub stream_stall_limit: Duration,

    /// Live notification streams open at once; past it, 503 before a
    /// stream starts.
    #[arg(long, env = "MAX_STREAMS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_streams: u32,

    /// Live notification streams one caller (a principal) may have open;
    /// past it, 429.
    #[arg(long, env = "MAX_STREAMS_PER_CALLER", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_streams_per_caller: u32,

    /// How long a live notification stream's reader waits before it
    /// reconnects, once the stream ends (the events' `retry:`).
    #[arg(long, env = "STREAM_RETRY", default_value = "1s", value_parser = humantime::parse_duration)]
    pub stream_retry: Duration,

    /// A JWKS file (an identity provider's published keys, saved) whose
    /// keys sign the bearer tokens the edge accepts. Read again when it
    /// changes, so keys rotate without a restart. Without keys (this or
    /// --jwt-pem), no token is accepted: only anonymous reads work.
    #[arg(long, env = "JWT_JWKS")]
    pub jwt_jwks: Option<PathBuf>,

    /// PEM public keys (Ed25519, P-256 or RSA), comma separated, that sign
    /// the bearer tokens the edge accepts, besides --jwt-jwks.
    #[arg(long, env = "JWT_PEM", value_delimiter = ',')]
    pub jwt_pem: Vec<PathBuf>,

    /// The issuer (`iss`) tokens must name. Required with keys.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// The audience (`aud`) tokens must name. Required with keys.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// How far a token's `exp` and `nbf` may be off, for clocks that differ.
    #[arg(long, env = "JWT_LEEWAY", default_value = "30s", value_parser = humantime::parse_duration)]
    pub jwt_leeway: Duration,

    /// For one machine only: an Ed25519 private key (PKCS#8 PEM) with
    /// which POST /api/dev/sign-in issues a token to whoever asks, as
    /// whatever role they ask for. Its public key must be among the
    /// verification keys. Off by default; never give it to an edge that
    /// strangers reach.
    #[arg(long, env = "DEV_SIGN_IN_KEY")]
    pub dev_sign_in_key: Option<PathBuf>,

    /// How long a token from POST /api/dev/sign-in lasts.
    #[arg(long, env = "DEV_TOKEN_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub dev_token_ttl: Duration,

    /// How often replica DNS names (dns://…) are resolved again.
    #[arg(long, env = "DNS_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub dns_interval: Duration,
    #[command(flatten)]
    pub tls: dishpatch::tls::TlsArgs,
}

impl Config {
    /// The settings of a pool balanced by `strategy`.
    pub(crate) fn pool_settings(&self, strategy: Strategy) -> PoolSettings {
        PoolSettings {
            strategy,
            probe: ProbeSettings {
                interval: self.probe_interval,
                timeout: self.probe_timeout,
                rise: self.rise,
                fall: self.fall,
            },
            try_timeout: TryTimeout {
                min: self.try_timeout_min,
                ..PoolSettings::default().try_timeout
            },
            hedge_reads: self.hedge_reads,
            ejection: Ejection {
                consecutive: self.eject_after,
                ..PoolSettings::default().ejection
            },
            slow_start: self.slow_start,
            panic: Panic {
                threshold: f64::from(self.panic_threshold) / 100.0,
                route_when_none_healthy: self.panic_routing,
            },
            dns_interval: self.dns_interval,
            default_deadline: self.deadline,
        }
    }

    /// How tokens are checked: every key source given, with the issuer and
    /// audience they need.
    pub(crate) fn verifier_settings(&self) -> Result<VerifierSettings, String> {
        let sources: Vec<KeySource> = self
            .jwt_jwks
            .iter()
            .cloned()
            .map(KeySource::Jwks)
            .chain(self.jwt_pem.iter().cloned().map(KeySource::Pem))
            .collect();
        let (issuer, audience) =
            match (&self.jwt_issuer, &self.jwt_audience) {
                (Some(issuer), Some(audience)) => (issuer.clone(), audience.clone()),
                _ if sources.is_empty() => (String::new(), String::new()),
                _ => return Err(
                    "--jwt-issuer and --jwt-audience are required with keys: tokens are checked against both"
                        .to_owned(),
                ),
            };
        Ok(VerifierSettings {
            sources,
            issuer,
            audience,
            leeway: self.jwt_leeway,
        })
    }
}
