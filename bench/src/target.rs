//! Where the load goes: the edge over HTTP/1.1 (`http://host:port`) or a
//! service over gRPC (`grpc://host:port`).

use std::{fmt, str::FromStr};

/// A load target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The REST API of an edge, over HTTP/1.1 keep-alive connections.
    Http {
        /// `host:port`.
        authority: String,
    },
    /// A service, over HTTP/2 connections carrying many streams.
    Grpc {
        /// `host:port`.
        authority: String,
    },
}

impl FromStr for Target {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let (scheme, authority) = value
            .split_once("://")
            .ok_or_else(|| format!("target {value:?} must be http://host:port or grpc://host:port"))?;
        let authority = authority.trim_end_matches('/').to_owned();
        if !authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        {
            return Err(format!("target {value:?} must name a host and a port"));
        }
        match scheme {
            "http" => Ok(Self::Http { authority }),
            "grpc" => Ok(Self::Grpc { authority }),
            _ => Err(format!("target {value:?}: the scheme must be http or grpc")),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http { authority } => write!(f, "http://{authority}"),
            Self::Grpc { authority } => write!(f, "grpc://{authority}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(
            "http://127.0.0.1:3000/".parse(),
            Ok(Target::Http {
                authority: "127.0.0.1:3000".into()
            })
        );
        assert_eq!(
            "grpc://localhost:50051".parse(),
            Ok(Target::Grpc {
                authority: "localhost:50051".into()
            })
        );
        for bad in ["127.0.0.1:3000", "ftp://x:1", "http://nohost", "http://:80"] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
