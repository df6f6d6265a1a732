//! Where a pool finds its replicas: a list of specs, each an address or a
//! DNS name whose every address is a replica.
//!
//! - `host:port`, `host:port=weight` (an `http://` in front is allowed):
//!   one replica.
//! - `dns://name:port`: every address `name` resolves to (A and AAAA
//!   records, through the system's resolver configuration), at `port`;
//!   Kubernetes' headless Services answer with every ready pod this way.
//! - `dns://server/name:port`: the same, asking the DNS server at `server`
//!   (`ip` or `ip:port`), as gRPC's `dns://authority/host:port` names do.

use std::{fmt, net::SocketAddr, str::FromStr};

/// One entry of a replica list, with its weight for weighted balancing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSpec {
    /// Where the replica (or replicas) are.
    pub target: Target,
    /// Share of calls under weighted balancing, 1 to 100; every replica a
    /// DNS name resolves to gets it.
    pub weight: u32,
}

/// An address, or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `host:port`: one replica.
    Addr(String),
    /// A DNS name: a replica per address it resolves to.
    Dns {
        /// The name to resolve.
        name: String,
        /// The port every replica listens on.
        port: u16,
        /// The DNS server to ask, or the system's.
        server: Option<SocketAddr>,
    },
}

impl ReplicaSpec {
    /// A spec of one replica at `addr` (`host:port`), weight 1.
    pub fn addr(addr: impl Into<String>) -> Self {
        Self {
            target: Target::Addr(addr.into()),
            weight: 1,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(addr) => f.write_str(addr),
            Self::Dns {
                name,
                port,
                server: None,
            } => write!(f, "dns://{name}:{port}"),
            Self::Dns {
                name,
                port,
                server: Some(server),
            } => write!(f, "dns://{server}/{name}:{port}"),
        }
    }
}

impl FromStr for ReplicaSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let trimmed = spec.trim();
        let (target, weight) = match trimmed.split_once('=') {
            Some((target, weight)) => {
                let weight = weight
                    .parse()
                    .ok()
                    .filter(|weight| (1..=100).contains(weight))
                    .ok_or_else(|| format!("weight in {spec:?} must be a whole number from 1 to 100"))?;
                (target, weight)
            }
            None => (trimmed, 1),
        };
        let target = match target.strip_prefix("dns://") {
            Some(rest) => dns_target(spec, rest)?,
            None => {
                let addr = target.strip_prefix("http://").unwrap_or(target);
                host_port(addr).ok_or_else(|| {
                    format!("replica {spec:?} must be host:port or dns://name:port (optionally =weight)")
                })?;
                Target::Addr(addr.to_owned())
            }
        };
        Ok(Self { target, weight })
    }
}

/// `name:port` or `server/name:port`, after `dns://`.
fn dns_target(spec: &str, rest: &str) -> Result<Target, String> {
    let (server, name_port) = match rest.split_once('/') {
        None => (None, rest),
        Some(("", name_port)) => (None, name_port),
        Some((server, name_port)) => {
            let server = server
                .parse::<SocketAddr>()
                .or_else(|_| {
                    server
                        .parse::<std::net::IpAddr>()
                        .map(|ip| SocketAddr::new(ip, 53))
                })
                .map_err(|_| {
                    format!("DNS server in {spec:?} must be an IP address, optionally with :port")
                })?;
            (Some(server), name_port)
        }
    };
    let (name, port) = host_port(name_port)
        .ok_or_else(|| format!("{spec:?} must name a host and a port: dns://name:port"))?;
    Ok(Target::Dns {
        name: name.to_owned(),
        port,
        server,
    })
}

/// `host:port` split, if it is one.
fn host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty() && !host.contains('/')).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_with_weights() {
        assert_eq!(
            "127.0.0.1:50051".parse(),
            Ok(ReplicaSpec::addr("127.0.0.1:50051"))
        );
        assert_eq!(
            " http://restaurants.internal:50051=3".parse(),
            Ok(ReplicaSpec {
                target: Target::Addr("restaurants.internal:50051".into()),
                weight: 3
            })
        );
    }

    #[test]
    fn parses_dns_names() {
        let spec: ReplicaSpec = "dns://restaurant-svc.internal:50051".parse().unwrap();
        assert_eq!(
            spec.target,
            Target::Dns {
                name: "restaurant-svc.internal".into(),
                port: 50051,
                server: None
            }
        );
        assert_eq!(spec.target.to_string(), "dns://restaurant-svc.internal:50051");
        let spec: ReplicaSpec = "dns:///orders:7=2".parse().unwrap();
        assert_eq!(spec.weight, 2);
        assert!(matches!(spec.target, Target::Dns { server: None, .. }));
        let spec: ReplicaSpec = "dns://127.0.0.1:5353/restaurants.test:50051".parse().unwrap();
        assert_eq!(
            spec.target,
            Target::Dns {
                name: "restaurants.test".into(),
                port: 50051,
                server: Some("127.0.0.1:5353".parse().unwrap())
            }
        );
        assert_eq!(
            spec.target.to_string(),
            "dns://127.0.0.1:5353/restaurants.test:50051"
        );
        let spec: ReplicaSpec = "dns://10.0.0.2/r.test:1".parse().unwrap();
        assert!(matches!(spec.target, Target::Dns { server: Some(s), .. } if s.port() == 53));
    }

    #[test]
    fn refuses_what_is_not_a_spec() {
        for bad in [
            "",
            "localhost",
            ":50051",
            "host:port",
            "host:1=0",
            "host:1=many",
            "host:1=101",
            "dns://",
            "dns://name",
            "dns://not-an-ip/name:1",
            "dns://127.0.0.1/name",
        ] {
            assert!(bad.parse::<ReplicaSpec>().is_err(), "{bad:?}");
        }
    }
}
