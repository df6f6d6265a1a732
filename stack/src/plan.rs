//! The topology of a dishpatch stack, written once: which processes it
//! runs, on which ports, with which flags. The launcher runs a [`Plan`];
//! the benchmark suite and the test harness start theirs from it too.

use edge::auth::dev::{self, DevKey};
use std::{
    collections::HashSet,
    ffi::OsString,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
};

/// A part of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Part {
    /// The HTTP edge.
    Edge,
    /// restaurant-svc.
    RestaurantSvc,
    /// order-svc.
    OrderSvc,
    /// notify-svc.
    NotifySvc,
}

impl Part {
    /// The services, in the order they start: each after those it calls.
    pub const SERVICES: [Part; 3] = [Part::RestaurantSvc, Part::NotifySvc, Part::OrderSvc];

    /// The gRPC service a service part serves, which its readiness is
    /// asked about (`grpc.health.v1`); `None` for the edge.
    pub fn grpc_service(self) -> Option<&'static str> {
        use dishpatch::proto::{notify, order, restaurant};
        match self {
            Self::Edge => None,
            Self::RestaurantSvc => Some(restaurant::v1::restaurant_service_server::SERVICE_NAME),
            Self::OrderSvc => Some(order::v1::order_service_server::SERVICE_NAME),
            Self::NotifySvc => Some(notify::v1::notify_service_server::SERVICE_NAME),
        }
    }

    /// Its name: the binary's, and the launcher's `serve` argument.
    pub fn name(self) -> &'static str {
        match self {
            Self::Edge => "edge",
            Self::RestaurantSvc => "restaurant-svc",
            Self::OrderSvc => "order-svc",
            Self::NotifySvc => "notify-svc",
        }
    }
}

/// One process of the stack.
#[derive(Debug, Clone)]
pub struct Process {
    /// `restaurant-svc#1`, `edge`, …
    pub name: String,
    /// What it runs.
    pub part: Part,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its flags (`stack serve <part> <args>`, or the part's own binary).
    pub args: Vec<OsString>,
    /// Its environment, beyond what it inherits: settings that must not
    /// show in `ps`, as flags would (a store URL may hold a password).
    pub env: Vec<(&'static str, String)>,
}

/// Edge processes a stack runs unless told otherwise: each serves on one
/// thread, so two keep a two-core machine busy.
pub const DEFAULT_EDGES: u16 = 2;

/// How to lay out a stack.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Replicas of each service.
    pub replicas: u16,
    /// Where the edge listens.
    pub edge_listen: SocketAddr,
    /// Edge processes, all serving one socket bound for them
    /// ([`crate::edge_socket`]).
    pub edges: u16,
    /// Port of the first restaurant-svc replica; order-svc and notify-svc
    /// take the next two, and further replicas the next free ports after
    /// them. 0 gives every replica any free port.
    pub service_port: u16,
    /// Folder of the services' SQLite files, and of the stack's key.
    pub data_dir: PathBuf,
    /// Where the services keep their data.
    pub stores: Stores,
    /// Flags added to every process of a part (tests shorten probe
    /// intervals and drains).
    pub extra_args: Vec<(Part, Vec<String>)>,
}

/// Where the services keep their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stores {
    /// A SQLite file per service in the data folder (`data/order.db`, …).
    Sqlite,
    /// A database per service ([`database_name`]) on the PostgreSQL server
    /// of this URL (its database, if it names one, is not used).
    Postgres(String),
}

/// The variable a service reads its store's URL from.
const DATABASE_URL: &str = "DATABASE_URL";

/// The PostgreSQL database of `part`'s store: `dishpatch_order`, …
pub fn database_name(part: Part) -> String {
    format!("dishpatch_{}", part.name().trim_end_matches("-svc"))
}

/// `server`, a PostgreSQL URL, naming `database` instead of its own:
/// `postgres://u@h:5432/x?host=/run` and `order` make
/// `postgres://u@h:5432/order?host=/run`.
pub fn database_url(server: &str, database: &str) -> Result<String, String> {
    let (scheme, rest) = server
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "postgres" | "postgresql"))
        .ok_or_else(|| format!("{server:?} is not a postgres:// URL"))?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    let query = after.find('?').map_or("", |start| &after[start..]);
    Ok(format!("{scheme}://{authority}/{database}{query}"))
}

impl Layout {
    /// The folder of the stack's signing key.
    pub fn auth_dir(&self) -> PathBuf {
        auth_dir(&self.data_dir)
    }
}

/// The folder of the signing key of a stack whose data is in `data_dir`.
pub fn auth_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("auth")
}

/// The key the stack's edge trusts and its development sign-in signs
/// with, made in the stack's data folder the first time: call before
/// starting the plan's edge. Tools that act on the stack (`stack token`,
/// tests, the benchmark) sign their tokens with it too.
pub fn signing_key(data_dir: &Path) -> Result<DevKey, String> {
    DevKey::load_or_create(&auth_dir(data_dir))
}

/// The flags that make an edge trust the key of a stack whose data is in
/// `data_dir` ([`signing_key`]) and sign in with it.
pub fn edge_auth_args(data_dir: &Path) -> Vec<String> {
    let auth = auth_dir(data_dir);
    vec![
        "--jwt-jwks".to_owned(),
        auth.join(dev::JWKS_FILE).display().to_string(),
        "--jwt-issuer".to_owned(),
        dev::ISSUER.to_owned(),
        "--jwt-audience".to_owned(),
        dev::AUDIENCE.to_owned(),
        "--dev-sign-in-key".to_owned(),
        auth.join(dev::KEY_FILE).display().to_string(),
    ]
}

/// The whole stack: the services' replicas in the order they start, the
/// edges last.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every process.
    pub processes: Vec<Process>,
}

impl Plan {
    /// Lays out a stack: ports, stores and the flags that connect them.
    pub fn new(layout: &Layout) -> Result<Self, String> {
        let mut ports = Ports::new(layout.service_port);
        // The first replicas of restaurant-svc, order-svc and notify-svc on
        // the well-known ports 50051, 50052 and 50053, then the rest.
        let well_known = [Part::RestaurantSvc, Part::OrderSvc, Part::NotifySvc];
        let mut addrs: Vec<(Part, Vec<SocketAddr>)> = Vec::new();
        for part in well_known {
            addrs.push((part, vec![ports.first()?]));
        }
        for (_, replicas) in &mut addrs {
            for _ in 1..layout.replicas {
                replicas.push(ports.next_free()?);
            }
        }
        let addrs_of = |part: Part| -> &[SocketAddr] {
            &addrs.iter().find(|(of, _)| *of == part).expect("every service").1
        };
        let mut processes = Vec::new();
        for part in Part::SERVICES {
            let store = match &layout.stores {
                Stores::Sqlite => format!(
                    "sqlite://{}/{}.db",
                    layout.data_dir.display(),
                    part.name().trim_end_matches("-svc")
                ),
                Stores::Postgres(server) => database_url(server, &database_name(part))?,
            };
            for (index, addr) in addrs_of(part).iter().enumerate() {
                let mut args = vec!["--listen".to_owned(), addr.to_string()];
                if part == Part::OrderSvc {
                    // order-svc balances its own calls over every replica.
                    args.extend([
                        "--restaurant-addr".to_owned(),
                        list(addrs_of(Part::RestaurantSvc)),
                        "--notify-addr".to_owned(),
                        list(addrs_of(Part::NotifySvc)),
                    ]);
                }
                processes.push(Process {
                    name: format!("{}#{}", part.name(), index + 1),
                    part,
                    addr: *addr,
                    args: with_extra(args, part, layout),
                    env: vec![(DATABASE_URL, store.clone())],
                });
            }
        }
        let mut plan = Self { processes };
        let edge = plan.edge(layout.edge_listen, usize::from(layout.replicas), layout);
        for index in 1..=layout.edges {
            plan.processes.push(Process {
                name: format!("edge#{index}"),
                ..edge.clone()
            });
        }
        Ok(plan)
    }

    /// The store the replicas of `part` share (their `DATABASE_URL`), if
    /// it has one.
    pub fn store_of(&self, part: Part) -> Option<String> {
        let env = &self.replicas(part).next()?.env;
        env.iter()
            .find(|(name, _)| *name == DATABASE_URL)
            .map(|(_, url)| url.clone())
    }

    /// The replicas of `part`.
    pub fn replicas(&self, part: Part) -> impl Iterator<Item = &Process> {
        self.processes.iter().filter(move |process| process.part == part)
    }

    /// An edge listening on `listen` in front of the first `replicas`
    /// replicas of each service.
    pub fn edge(&self, listen: SocketAddr, replicas: usize, layout: &Layout) -> Process {
        let replicas_of = |part| -> Vec<SocketAddr> {
            self.replicas(part)
                .take(replicas)
                .map(|process| process.addr)
                .collect()
        };
        let mut args = vec![
            "--listen".to_owned(),
            listen.to_string(),
            "--restaurant-replicas".to_owned(),
            list(&replicas_of(Part::RestaurantSvc)),
            "--order-replicas".to_owned(),
            list(&replicas_of(Part::OrderSvc)),
            "--notify-replicas".to_owned(),
            list(&replicas_of(Part::NotifySvc)),
            // On one machine, who answered is worth showing (the edge's
            // own default hides it from strangers).
            "--show-replicas".to_owned(),
            "true".to_owned(),
        ];
        // Tokens signed with the stack's own key, and development sign-in
        // with it: one machine has no identity provider.
        args.extend(edge_auth_args(&layout.data_dir));
        Process {
            name: "edge".to_owned(),
            part: Part::Edge,
            addr: listen,
            args: with_extra(args, Part::Edge, layout),
            env: Vec::new(),
        }
    }
}

/// `addrs` as a comma-separated list.
fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `args`, then the layout's extra flags for `part`.
fn with_extra(mut args: Vec<String>, part: Part, layout: &Layout) -> Vec<OsString> {
    for (of, extra) in &layout.extra_args {
        if *of == part {
            args.extend(extra.iter().cloned());
        }
    }
    args.into_iter().map(OsString::from).collect()
}

/// Hands out loopback ports: the well-known ones in order, then free ones.
struct Ports {
    next: u16,
    any: bool,
    taken: HashSet<u16>,
}

impl Ports {
    fn new(first: u16) -> Self {
        Self {
            next: first,
            any: first == 0,
            taken: HashSet::new(),
        }
    }

    /// The next well-known port, whether free or not (a busy one fails
    /// loudly at start rather than moving silently).
    fn first(&mut self) -> Result<SocketAddr, String> {
        if self.any {
            return self.next_free();
        }
        let port = self.next;
        self.next = port.checked_add(1).ok_or("out of ports")?;
        self.taken.insert(port);
        Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    /// The next port that is free now.
    fn next_free(&mut self) -> Result<SocketAddr, String> {
        loop {
            let port = if self.any {
                TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .and_then(|listener| listener.local_addr())
                    .map_err(|error| format!("finding a free port: {error}"))?
                    .port()
            } else {
                let port = self.next;
                self.next = port.checked_add(1).ok_or("out of ports")?;
                port
            };
            if self.taken.insert(port) && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(replicas: u16) -> Layout {
        Layout {
            replicas,
            edge_listen: "127.0.0.1:3000".parse().unwrap(),
            edges: 2,
            service_port: 0,
            data_dir: "data".into(),
            stores: Stores::Sqlite,
            extra_args: vec![(Part::OrderSvc, vec!["--drain".into(), "1s".into()])],
        }
    }

    fn args(process: &Process) -> Vec<String> {
        process
            .args
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_replica_is_connected_to_what_it_calls() {
        let plan = Plan::new(&layout(2)).unwrap();
        let names: Vec<&str> = plan
            .processes
            .iter()
            .map(|process| process.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "restaurant-svc#1",
                "restaurant-svc#2",
                "notify-svc#1",
                "notify-svc#2",
                "order-svc#1",
                "order-svc#2",
                "edge#1",
                "edge#2"
            ]
        );
        let addrs = |part| {
            plan.replicas(part)
                .map(|p| p.addr.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let order = args(plan.replicas(Part::OrderSvc).next().unwrap()).join(" ");
        assert!(
            order.contains(&format!("--restaurant-addr {}", addrs(Part::RestaurantSvc))),
            "{order}"
        );
        assert!(
            order.contains(&format!("--notify-addr {}", addrs(Part::NotifySvc))),
            "{order}"
        );
        assert_eq!(
            plan.store_of(Part::OrderSvc).as_deref(),
            Some("sqlite://data/order.db"),
            "its store, in its environment"
        );
        assert!(
            !order.contains("--database-url"),
            "not on its command line: {order}"
        );
        assert!(order.ends_with("--drain 1s"), "extra flags come last: {order}");
        let edge = args(plan.processes.last().unwrap()).join(" ");
        assert!(
            edge.contains(&format!("--order-replicas {}", addrs(Part::OrderSvc))),
            "{edge}"
        );
        assert!(
            edge.contains("--jwt-jwks data/auth/jwks.json --jwt-issuer dishpatch-local --jwt-audience dishpatch --dev-sign-in-key data/auth/signing-key.pem"),
            "{edge}"
        );

        let one = plan.edge("127.0.0.1:3001".parse().unwrap(), 1, &layout(2));
        let first = plan.replicas(Part::NotifySvc).next().unwrap().addr;
        let one = args(&one).join(" ");
        assert!(one.contains(&format!("--notify-replicas {first} ")), "{one}");
    }

    #[test]
    fn postgres_stores_are_a_database_per_service_on_one_server() {
        let plan = Plan::new(&Layout {
            stores: Stores::Postgres("postgres://me:secret@db.internal:5433/ignored?sslmode=require".into()),
            ..layout(2)
        })
        .unwrap();
        assert_eq!(
            plan.store_of(Part::OrderSvc).unwrap(),
            "postgres://me:secret@db.internal:5433/dishpatch_order?sslmode=require"
        );
        assert_eq!(
            database_url(
                "postgresql://postgres@localhost:5432?host=/data/postgres",
                "dishpatch_notify"
            )
            .unwrap(),
            "postgresql://postgres@localhost:5432/dishpatch_notify?host=/data/postgres"
        );
        assert_eq!(database_url("postgres://h", "x").unwrap(), "postgres://h/x");
        assert!(database_url("sqlite://data/x.db", "x").is_err());
    }

    #[test]
    fn first_replicas_take_the_well_known_ports() {
        let plan = Plan::new(&Layout {
            service_port: 50051,
            ..layout(1)
        })
        .unwrap();
        let port = |part| plan.replicas(part).next().unwrap().addr.port();
        assert_eq!(
            (
                port(Part::RestaurantSvc),
                port(Part::OrderSvc),
                port(Part::NotifySvc)
            ),
            (50051, 50052, 50053)
        );
    }
}
