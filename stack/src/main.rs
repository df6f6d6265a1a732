//! `stack`: the whole of dishpatch on one machine. `cargo run --release`
//! from the repository root runs it: the edge on port 3000 and replicas of
//! every service, each its own OS process, supervised.
//!
//! Every process is this same binary run as `stack serve <part> …`, so one
//! build holds everything and nothing depends on other binaries being built.

mod probe;
mod supervisor;

use clap::{Parser, Subcommand};
use edge::auth::{
    Principal, Role,
    dev::{self, DevKey},
};
use stack::{Layout, Part, Plan, Stores, postgres};
use std::{ffi::OsString, net::SocketAddr, path::PathBuf};

/// Starts the dishpatch stack: the edge and replicas of every service, each
/// its own process, restarted if it crashes, all stopped on Ctrl-C or SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "stack", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one part of the stack in this process, with that part's own
    /// flags (see `stack serve <part> --help`). The launcher starts every
    /// replica this way.
    // No help flag of its own: `--help` after the part is the part's.
    #[command(disable_help_flag = true)]
    Serve {
        /// Which part.
        #[arg(value_enum)]
        part: Part,
        /// The part's flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Prints a bearer token signed with the stack's key (in the data
    /// folder, made by the first run), for curl and scripts:
    /// `curl -H "Authorization: Bearer $(stack token --role admin)" …`.
    Token(TokenArgs),
    /// Asks a service whether it serves (grpc.health.v1), over mutual TLS
    /// when TLS_CERT, TLS_KEY and TLS_CA are set: exits 0 if it does. For
    /// orchestrators' probes, which cannot speak TLS themselves.
    Probe(probe::ProbeArgs),
    /// Makes the deployment's CA and a certificate for each part (edge,
    /// restaurant-svc, order-svc, notify-svc) for mutual TLS between the
    /// services and their callers, keeping any already there. Give each
    /// part its own with --tls-cert, --tls-key and --tls-ca.
    Certs {
        /// Where to keep them.
        #[arg(long, default_value = "data/tls")]
        out: PathBuf,
    },
}

/// Whom a token names.
#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// What the principal is.
    #[arg(long, value_enum, default_value = "admin")]
    role: Role,
    /// Who: a customer's name (the one on their orders), or a staff
    /// member's or admin's id.
    #[arg(long, default_value = "admin")]
    sub: String,
    /// The restaurants restaurant staff work for (ids, comma separated).
    #[arg(long, value_delimiter = ',')]
    restaurant: Vec<String>,
    /// How long the token lasts.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: std::time::Duration,
    /// The stack's data folder, as given to the launcher.
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
}

impl TokenArgs {
    /// The token, signed with the key in the data folder.
    fn token(self) -> Result<String, String> {
        let principal = Principal::new(self.sub, self.role, self.restaurant)?;
        let key_file = stack::auth_dir(&self.data_dir).join(dev::KEY_FILE);
        let key = DevKey::load(&key_file).map_err(|error| {
            format!("{error} (start the stack once with this --data-dir to make the key)")
        })?;
        Ok(key.sign(&principal, dev::ISSUER, dev::AUDIENCE, self.ttl))
    }
}

/// How to lay out the stack.
#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// Replicas of each service.
    #[arg(long, env = "REPLICAS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    replicas: u16,

    /// Address the edge serves HTTP on. Use 0.0.0.0:3000 to accept other
    /// machines.
    #[arg(long, env = "EDGE_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,

    /// Edge processes, all serving the --listen socket, which the launcher
    /// binds and passes to each: one that stops or crashes leaves the
    /// others serving, and SIGHUP to the launcher restarts them one at a
    /// time (to run a new build, say), each draining first (see README).
    #[arg(long, env = "EDGES", default_value_t = stack::DEFAULT_EDGES, value_parser = clap::value_parser!(u16).range(1..=8))]
    edges: u16,

    /// Port of the first restaurant-svc replica; order-svc and notify-svc
    /// take the next two, and further replicas the next free ports after
    /// them. 0 gives every replica any free port.
    #[arg(long, env = "SERVICE_PORT", default_value_t = 50051)]
    service_port: u16,

    /// Folder of the services' stores (created if missing) and of the
    /// stack's signing key.
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    data_dir: PathBuf,

    /// Where the services keep their data: a SQLite file each in the data
    /// folder, or a database each on a PostgreSQL cluster the launcher
    /// keeps in the data folder (`postgres/`, made by initdb the first
    /// time, served on a socket in that folder only, stopped with the
    /// stack; PostgreSQL's server binaries must be installed).
    #[arg(long, env = "STORE", value_enum, default_value_t = StoreKind::Sqlite)]
    store: StoreKind,

    /// With --store postgres: a PostgreSQL server of yours to keep the
    /// services' databases on (each its own, made if missing, so its user
    /// must be allowed to create databases), instead of a cluster of the
    /// launcher's own. The services get it in their environment, not on
    /// their command lines; give it here as the variable too, which `ps`
    /// does not show
    #[arg(long, env = POSTGRES_URL, hide_env_values = true)]
    postgres_url: Option<String>,
}

/// The variable naming a PostgreSQL server for the launcher: its own, which
/// no part it starts is given.
const POSTGRES_URL: &str = "POSTGRES_URL";

/// Which store the launcher gives the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StoreKind {
    /// SQLite files: nothing to install.
    Sqlite,
    /// PostgreSQL, the store for more than one machine.
    Postgres,
}

impl RunArgs {
    fn layout(&self, stores: Stores) -> Layout {
        Layout {
            replicas: self.replicas,
            edge_listen: self.listen,
            edges: self.edges,
            service_port: self.service_port,
            data_dir: self.data_dir.clone(),
            stores,
            // The edge stops first, so replicas need not drain long.
            extra_args: Part::SERVICES
                .map(|part| (part, vec!["--drain".to_owned(), "1s".to_owned()]))
                .to_vec(),
        }
    }
}

/// The runtime a part is served on: one thread, as each of the part's own
/// binaries runs too. A stack gets its parallelism from processes (edges
/// and replicas), as nginx's workers do; in one process, a work-stealing
/// runtime on two cores spent a fifth of the edge's CPU waking its other
/// worker for each request's tasks (BENCHMARKS.md).
fn serving_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let runtime = match &cli.command {
        Some(Command::Serve { .. }) => serving_runtime()?,
        _ => tokio::runtime::Runtime::new()?,
    };
    match cli.command {
        Some(Command::Serve { part, args }) => {
            let args = std::iter::once(OsString::from(part.name())).chain(args);
            runtime.block_on(async {
                let name = part.name();
                match part {
                    Part::Edge => dishpatch::binary::main_from(name, args, edge::build).await,
                    Part::RestaurantSvc => {
                        dishpatch::binary::main_from(name, args, restaurant_svc::build).await
                    }
                    Part::OrderSvc => dishpatch::binary::main_from(name, args, order_svc::build).await,
                    Part::NotifySvc => dishpatch::binary::main_from(name, args, notify_svc::build).await,
                }
            })
        }
        Some(Command::Token(args)) => {
            println!("{}", args.token()?);
            Ok(())
        }
        Some(Command::Probe(args)) => Ok(runtime.block_on(probe::probe(args))?),
        Some(Command::Certs { out }) => {
            let parts = [Part::Edge].into_iter().chain(Part::SERVICES);
            stack::certs::make(&out, &parts.map(Part::name).collect::<Vec<_>>())?;
            println!("certificates in {}", out.display());
            Ok(())
        }
        None => {
            stack::signing_key(&cli.run.data_dir)?;
            let databases = Part::SERVICES.map(stack::database_name);
            let cluster = match (cli.run.store, &cli.run.postgres_url) {
                (StoreKind::Sqlite, None) => {
                    let plan = Plan::new(&cli.run.layout(Stores::Sqlite))?;
                    return runtime.block_on(supervisor::run_stack(plan));
                }
                (StoreKind::Sqlite, Some(_)) => {
                    return Err(format!(
                        "{POSTGRES_URL} (--postgres-url) is for --store postgres: add that, or unset it"
                    )
                    .into());
                }
                (StoreKind::Postgres, Some(server)) => {
                    return runtime.block_on(async {
                        postgres::create_databases(server, &databases).await?;
                        let plan = Plan::new(&cli.run.layout(Stores::Postgres(server.clone())))?;
                        supervisor::run_stack(plan).await
                    });
                }
                (StoreKind::Postgres, None) => postgres::Cluster::start(&cli.run.data_dir.join("postgres"))?,
            };
            runtime.block_on(cluster.serve(&databases, async |server| {
                let plan = Plan::new(&cli.run.layout(Stores::Postgres(server)))?;
                supervisor::run_stack(plan).await
            }))
        }
    }
}
