//! Runs the planned processes: each line they print, prefixed with the
//! process's name; a process that exits on its own restarted with growing
//! backoff; on Ctrl-C or SIGTERM the edge stopped first, then the services,
//! each given time to drain before it is killed.

use crate::{
    Part,
    plan::{Plan, Process},
};
use dishpatch::time::Backoff;
use nix::{sys::signal::Signal, unistd::Pid};
use std::{path::PathBuf, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::Command,
    task::JoinSet,
    time::Instant,
};
use tokio_util::sync::CancellationToken;

/// The first wait before restarting a crashed process; doubles each crash.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process up this long counts as healthy again: its next crash restarts
/// it after the first backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How long a process may take to stop after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(20);

/// Runs the stack until Ctrl-C or SIGTERM.
pub(crate) async fn run_stack(plan: Plan) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let shutdown = dishpatch::shutdown::on_signal()?;
    print_map(&plan);

    let (stop_edge, stop_services) = (CancellationToken::new(), CancellationToken::new());
    let (mut edge, mut services) = (JoinSet::new(), JoinSet::new());
    for process in plan.processes {
        let (set, stop) = match process.part {
            Part::Edge => (&mut edge, &stop_edge),
            _ => (&mut services, &stop_services),
        };
        set.spawn(supervise(exe.clone(), process, stop.clone()));
    }

    shutdown.cancelled().await;
    eprintln!("[stack] stopping: the edge first, then the services");
    stop_edge.cancel();
    while edge.join_next().await.is_some() {}
    stop_services.cancel();
    while services.join_next().await.is_some() {}
    eprintln!("[stack] stopped");
    Ok(())
}

fn print_map(plan: &Plan) {
    println!("dishpatch stack:");
    for process in &plan.processes {
        let scheme = if process.part == Part::Edge {
            "http"
        } else {
            "grpc"
        };
        println!("  {:<18} {scheme}://{}", process.name, process.addr);
    }
}

/// Keeps one process running until `stop`, then stops it.
async fn supervise(exe: PathBuf, process: Process, stop: CancellationToken) {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        let started = Instant::now();
        let mut child = match Command::new(&exe)
            .arg("serve")
            .arg(process.part.name())
            .args(&process.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(error) => {
                eprintln!("[stack] cannot start {}: {error}", process.name);
                return;
            }
        };
        let pid = child.id().expect("a just-spawned child has a pid");
        eprintln!("[stack] started {} (pid {pid})", process.name);
        let prefix = format!("{:<18}|", process.name);
        let mut output = JoinSet::new();
        output.spawn(forward(
            child.stdout.take().expect("piped"),
            prefix.clone(),
            false,
        ));
        output.spawn(forward(child.stderr.take().expect("piped"), prefix, true));

        tokio::select! {
            exited = child.wait() => {
                while output.join_next().await.is_some() {}
                let status = exited.map_or_else(|error| error.to_string(), |status| status.to_string());
                if stop.is_cancelled() {
                    return;
                }
                if started.elapsed() >= STABLE_AFTER {
                    backoff.reset();
                }
                let wait = backoff.next_wait();
                eprintln!("[stack] {} exited ({status}); restarting in {wait:?}", process.name);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            () = stop.cancelled() => {
                // SIGTERM lets it drain; it is killed if it takes too long.
                let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                match tokio::time::timeout(STOP_LIMIT, child.wait()).await {
                    Ok(_) => {}
                    Err(_) => {
                        eprintln!("[stack] {} did not stop within {STOP_LIMIT:?}; killing it", process.name);
                        let _ = child.kill().await;
                    }
                }
                while output.join_next().await.is_some() {}
                eprintln!("[stack] {} stopped", process.name);
                return;
            }
        }
    }
}

/// Copies a child's output line by line, each line prefixed.
async fn forward(stream: impl AsyncRead + Unpin, prefix: String, to_stderr: bool) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if to_stderr {
            eprintln!("{prefix} {line}");
        } else {
            println!("{prefix} {line}");
        }
    }
}
