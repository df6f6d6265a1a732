//! Which processes the stack runs, on which ports, with which flags.

use crate::{Part, RunArgs};
use std::{
    collections::HashSet,
    ffi::OsString,
    net::{Ipv4Addr, SocketAddr, TcpListener},
};

/// One process of the stack.
#[derive(Debug, Clone)]
pub(crate) struct Process {
    /// `restaurant-svc#1`, `edge`, …
    pub(crate) name: String,
    pub(crate) part: Part,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// The flags after `stack serve <part>`.
    pub(crate) args: Vec<OsString>,
}

/// The whole stack: service replicas first, the edge last.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) processes: Vec<Process>,
}

impl Plan {
    pub(crate) fn new(run: &RunArgs) -> Result<Self, String> {
        let mut ports = Ports::new(run.service_port);
        let services = [Part::RestaurantSvc, Part::OrderSvc, Part::NotifySvc];
        // First replicas on the well-known ports, then the rest.
        let mut addrs: Vec<Vec<SocketAddr>> = services
            .iter()
            .map(|_| ports.first().map(|addr| vec![addr]))
            .collect::<Result<_, _>>()?;
        for replicas in &mut addrs {
            for _ in 1..run.replicas {
                replicas.push(ports.next_free()?);
            }
        }
        let [restaurants, orders, notifications] = [&addrs[0], &addrs[1], &addrs[2]];
        let list = |addrs: &[SocketAddr]| {
            addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let store = |service: &str| format!("sqlite://{}/{service}.db", run.data_dir.display());

        let mut processes = Vec::new();
        for (part, replicas) in services.iter().zip(&addrs) {
            let short = part.name().trim_end_matches("-svc");
            for (index, addr) in replicas.iter().enumerate() {
                let mut args = vec![
                    "--listen".to_owned(),
                    addr.to_string(),
                    "--database-url".to_owned(),
                    store(short),
                    // The edge stops first, so replicas need not drain long.
                    "--drain".to_owned(),
                    "1s".to_owned(),
                ];
                if *part == Part::OrderSvc {
                    // order-svc balances its own calls over every replica.
                    args.extend([
                        "--restaurant-addr".to_owned(),
                        list(restaurants),
                        "--notify-addr".to_owned(),
                        list(notifications),
                    ]);
                }
                processes.push(Process {
                    name: format!("{}#{}", part.name(), index + 1),
                    part: *part,
                    addr: *addr,
                    args: args.into_iter().map(OsString::from).collect(),
                });
            }
        }
        let edge_args = [
            "--listen".to_owned(),
            run.listen.to_string(),
            "--restaurant-replicas".to_owned(),
            list(restaurants),
            "--order-replicas".to_owned(),
            list(orders),
            "--notify-replicas".to_owned(),
            list(notifications),
        ];
        processes.push(Process {
            name: "edge".to_owned(),
            part: Part::Edge,
            addr: run.listen,
            args: edge_args.into_iter().map(OsString::from).collect(),
        });
        Ok(Self { processes })
    }
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
