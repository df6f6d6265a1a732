//! Idle keep-alive connections: opens many connections to an edge, sends
//! one request on each (so the server has parsed and answered on every
//! one, as a browser's idle tab would have), and holds them open.

use crate::{http::HttpConnection, load::Outcome, scenario::Operation, target::Target};

/// Connections held open; they close when this is dropped.
#[derive(Debug)]
pub struct IdleConnections {
    _held: Vec<HttpConnection>,
}

impl IdleConnections {
    /// Opens `count` connections to `target` (an edge), each answering one
    /// GET of restaurant `restaurant_id`.
    pub async fn open(target: &Target, restaurant_id: &str, count: usize) -> Result<Self, String> {
        let Target::Http { authority } = target else {
            return Err("idle connections are HTTP/1.1 connections to an edge".into());
        };
        let read = Operation::GetRestaurant(restaurant_id.to_owned());
        let mut held = Vec::with_capacity(count);
        for opened in 0..count {
            let mut connection = HttpConnection::new(authority, None);
            match connection.send(&read).await {
                Outcome::Ok => held.push(connection),
                outcome => {
                    return Err(format!(
                        "connection {} of {count} to {target} failed: {outcome:?}",
                        opened + 1
                    ));
                }
            }
        }
        Ok(Self { _held: held })
    }
}

/// Raises this process's open-file limit to its hard limit, so it (and the
/// processes it starts, which inherit it) can hold `needed` descriptors.
pub fn raise_fd_limit(needed: u64) -> Result<(), String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|error| format!("reading the fd limit: {error}"))?;
    if hard < needed {
        return Err(format!(
            "the open-file limit is {hard}, below the {needed} the idle connections need: \
             raise it (ulimit -Hn) or pass --idle-connections 0"
        ));
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|error| format!("raising the fd limit: {error}"))
}
