//! The listening socket a stack's edges share: bound once, by whoever
//! starts them, and passed to each as systemd's socket activation passes
//! sockets (fd 3, `LISTEN_FDS=1`). A connection waits in it for whichever
//! edge accepts first, so the edges serve one port together (each on one
//! thread, the stack's parallelism coming from processes), and one edge
//! stopping costs no connection.

use command_fds::{CommandFdExt, FdMapping};
use std::{net::SocketAddr, os::fd::OwnedFd};
use tokio::process::Command;

/// Binds `addr`; returns the socket and the address it got (a port 0
/// made definite).
pub async fn bind(addr: SocketAddr) -> Result<(OwnedFd, SocketAddr), String> {
    let bind_error = |error: std::io::Error| format!("binding the edges' address {addr}: {error}");
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener.into_std().map_err(bind_error)?.into(), bound))
}

/// Gives `command` the edges' listening `socket` as fd 3. The command
/// holds its copy of the socket until dropped.
pub fn pass(command: &mut Command, socket: &OwnedFd) -> Result<(), String> {
    // No LISTEN_PID (the child's pid is not known before it starts), and
    // none inherited, should the starter itself have been given sockets.
    command
        .env("LISTEN_FDS", "1")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES");
    let socket = socket
        .try_clone()
        .map_err(|error| format!("copying the edges' socket: {error}"))?;
    command
        .fd_mappings(vec![FdMapping {
            parent_fd: socket,
            child_fd: 3,
        }])
        .map(|_| ())
        .map_err(|error| format!("passing the edges' socket: {error}"))
}
