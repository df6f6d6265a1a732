//! Runs the planned processes: each line they print, prefixed with the
//! process's name; a process that exits on its own restarted with growing
//! backoff; on Ctrl-C or SIGTERM the edge stopped first, then the services,
//! each given time to drain before it is killed.
//!
//! They start in the order they depend on each other: restaurant-svc and
//! notify-svc, then order-svc once those listen, then the edge once every
//! service listens. A caller's first health probes then find its
//! dependencies serving, rather than refusing connections and being
//! retried a little later.

use dishpatch::time::Backoff;
use nix::{sys::signal::Signal, unistd::Pid};
use stack::{Part, Plan, Process};
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
/// How long the next stage waits for a process to say it listens.
const LISTEN_LIMIT: Duration = Duration::from_secs(30);

/// Runs the stack until Ctrl-C or SIGTERM.
pub(crate) async fn run_stack(plan: Plan) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let shutdown = dishpatch::shutdown::on_signal()?;
    print_map(&plan);

    let (stop_edge, stop_services) = (CancellationToken::new(), CancellationToken::new());
    let (mut edge, mut services) = (JoinSet::new(), JoinSet::new());
    let mut processes = plan.processes;
    processes.sort_by_key(|process| stage(process.part));
    let mut starting = Vec::new();
    let mut current_stage = 0;
    for process in processes {
        if stage(process.part) != current_stage {
            // The next stage waits for this one to listen (or give up), unless
            // the stack is stopped meanwhile.
            for listening in starting.drain(..) {
                tokio::select! {
                    _ = tokio::time::timeout(LISTEN_LIMIT, listening) => {}
                    () = shutdown.cancelled() => {}
                }
            }
            current_stage = stage(process.part);
        }
        let (set, stop) = match process.part {
            Part::Edge => (&mut edge, &stop_edge),
            _ => (&mut services, &stop_services),
        };
        let (listening, listens) = tokio::sync::oneshot::channel();
        starting.push(listens);
        set.spawn(supervise(exe.clone(), process, stop.clone(), listening));
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

/// The order processes start in: each stage's dependencies are in the
/// stages before it.
fn stage(part: Part) -> u8 {
    match part {
        Part::RestaurantSvc | Part::NotifySvc => 0,
        Part::OrderSvc => 1,
        Part::Edge => 2,
    }
}

/// Keeps one process running until `stop`, then stops it; `listening` is
/// told when it first says it listens.
async fn supervise(
    exe: PathBuf,
    process: Process,
    stop: CancellationToken,
    listening: tokio::sync::oneshot::Sender<()>,
) {
    let mut listening = Some(listening);
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        let started = Instant::now();
        let mut child = match Command::new(&exe)
            .arg("serve")
            .arg(process.part.name())
            .args(&process.args)
            .env_remove(crate::POSTGRES_URL)
            .envs(process.env.iter().map(|(name, value)| (name, value)))
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
            listening.take(),
        ));
        output.spawn(forward(child.stderr.take().expect("piped"), prefix, true, None));

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

/// Copies a child's output line by line, each line prefixed; tells
/// `listening` when a line says where it listens (every dishpatch binary's
/// first line on stdout does).
async fn forward(
    stream: impl AsyncRead + Unpin,
    prefix: String,
    to_stderr: bool,
    mut listening: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains(" listening on ")
            && let Some(listening) = listening.take()
        {
            let _ = listening.send(());
        }
        if to_stderr {
            eprintln!("{prefix} {line}");
        } else {
            println!("{prefix} {line}");
        }
    }
}
