//! A child process that says where it listens: every dishpatch binary's
//! first line on stdout ends with its bound address (see [`crate::binary`]).
//! Used to start replicas by hand: tests, the benchmark suite.

use std::{net::SocketAddr, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// Starts `command` (its stdout piped here, itself killed when dropped)
/// and reads, for at most `limit`, the first line of its stdout, which
/// ends with the address it listens on.
pub async fn start_listening(mut command: Command, limit: Duration) -> Result<(Child, SocketAddr), String> {
    let program = command.as_std().get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("starting {program}: {error}"))?;
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let line = tokio::time::timeout(limit, lines.next_line())
        .await
        .map_err(|_| format!("{program} did not say where it listens within {limit:?}"))?
        .map_err(|error| format!("reading {program}'s stdout: {error}"))?
        .ok_or_else(|| format!("{program} exited before listening"))?;
    let addr = line
        .rsplit(' ')
        .next()
        .and_then(|addr| addr.parse().ok())
        .ok_or_else(|| format!("unexpected first line from {program}: {line:?}"))?;
    // Keep reading stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr))
}

/// How much memory a process holds, in MiB (from `/proc/<pid>/status`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resident {
    /// Its resident set now (`VmRSS`).
    pub now_mib: f64,
    /// Its resident set at its peak so far (`VmHWM`).
    pub peak_mib: f64,
}

/// How much memory process `pid` holds, if it runs and this is Linux.
pub fn resident(pid: u32) -> Option<Resident> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mib = |field: &str| -> Option<f64> {
        let line = status.lines().find(|line| line.starts_with(field))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some(Resident {
        now_mib: mib("VmRSS:")?,
        peak_mib: mib("VmHWM:")?,
    })
}
