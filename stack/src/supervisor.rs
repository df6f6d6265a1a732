//! Runs the planned processes: each line they print, prefixed with the
//! process's name; a process that exits on its own restarted with growing
//! backoff; on Ctrl-C or SIGTERM the edges stopped first, then the services,
//! each given time to drain before it is killed.
//!
//! The edges share one listening socket, bound here and passed to each
//! (`stack::edge_socket`): one edge stopping or crashing costs no
//! connection, and SIGHUP restarts the edges one at a time, each once
//! the one before listens again: a rolling restart that fails no request
//! of clients sending or connecting meanwhile (each stopping edge drains,
//! see the edge's `--drain`). The rollout stops at an edge that does not
//! come back, leaving the others running.
//!
//! They start in the order they depend on each other: restaurant-svc and
//! notify-svc, then order-svc once those listen, then the edge once every
//! service listens. A caller's first health probes then find its
//! dependencies serving, rather than refusing connections and being
//! retried a little later.

use dishpatch::time::Backoff;
use nix::{sys::signal::Signal, unistd::Pid};
use stack::{Part, Plan, Process};
use std::{os::fd::OwnedFd, path::PathBuf, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, Command},
    signal::unix::{SignalKind, signal},
    sync::{mpsc, oneshot},
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
pub(crate) async fn run_stack(mut plan: Plan) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let shutdown = dishpatch::shutdown::on_signal()?;
    // Before any child starts: SIGHUP's default would end the launcher
    // and leave its children running.
    let mut hangups = signal(SignalKind::hangup())?;
    let edge_socket = bind_edge_socket(&mut plan).await?;
    print_map(&plan);

    let (stop_edge, stop_services) = (CancellationToken::new(), CancellationToken::new());
    let (mut edge, mut services) = (JoinSet::new(), JoinSet::new());
    let mut renewals = Vec::new();
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
        let (listening, listens) = oneshot::channel();
        starting.push(listens);
        let (seat, set, stop) = match process.part {
            Part::Edge => {
                let (renew, renewals_of_this_edge) = mpsc::channel(1);
                renewals.push((process.name.clone(), renew));
                let socket = edge_socket.as_ref().expect("bound for the plan's edges");
                let seat = EdgeSeat {
                    socket: socket.try_clone()?,
                    renewals: renewals_of_this_edge,
                };
                (Some(seat), &mut edge, &stop_edge)
            }
            _ => (None, &mut services, &stop_services),
        };
        set.spawn(supervise(exe.clone(), process, seat, stop.clone(), listening));
    }
    drop(edge_socket);

    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(()) = hangups.recv() => {
                eprintln!("[stack] SIGHUP: restarting the edges one at a time");
                tokio::select! {
                    restarted = restart_one_at_a_time(&renewals) => match restarted {
                        Ok(()) => eprintln!("[stack] every edge restarted"),
                        Err(why) => eprintln!("[stack] rolling restart stopped: {why}; the edges after it keep running"),
                    },
                    () = shutdown.cancelled() => break,
                }
            }
        }
    }
    eprintln!("[stack] stopping: the edges first, then the services");
    stop_edge.cancel();
    while edge.join_next().await.is_some() {}
    stop_services.cancel();
    while services.join_next().await.is_some() {}
    eprintln!("[stack] stopped");
    Ok(())
}

/// Binds the socket the plan's edges share, if it has edges, and puts
/// the address it got (a port 0 made definite) in their processes.
async fn bind_edge_socket(plan: &mut Plan) -> Result<Option<OwnedFd>, Box<dyn std::error::Error>> {
    let Some(addr) = plan.replicas(Part::Edge).next().map(|edge| edge.addr) else {
        return Ok(None);
    };
    let (socket, bound) = stack::edge_socket::bind(addr).await?;
    for edge in plan
        .processes
        .iter_mut()
        .filter(|process| process.part == Part::Edge)
    {
        edge.addr = bound;
    }
    Ok(Some(socket))
}

/// Restarts each edge in turn, the next once the one before listens. If
/// one does not come back (a broken build, say), the rest are left
/// running as they are: the rollout stops there.
async fn restart_one_at_a_time(renewals: &[(String, Renew)]) -> Result<(), String> {
    for (edge, renew) in renewals {
        let (listening, listens) = oneshot::channel();
        renew
            .send(listening)
            .await
            .map_err(|_| format!("{edge} is not running"))?;
        match tokio::time::timeout(STOP_LIMIT + LISTEN_LIMIT, listens).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(format!("{edge} exited before it listened")),
            Err(_) => {
                return Err(format!(
                    "{edge} did not stop and listen again within {:?}",
                    STOP_LIMIT + LISTEN_LIMIT
                ));
            }
        }
    }
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
    let pid = std::process::id();
    println!("launcher pid {pid}: kill -HUP {pid} restarts the edges one at a time");
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

/// Asks an edge to restart, with where to say that the new one listens.
type Renew = mpsc::Sender<oneshot::Sender<()>>;

/// What an edge process gets beyond its flags: the listening socket of
/// every edge, and requests to restart it.
struct EdgeSeat {
    socket: OwnedFd,
    renewals: mpsc::Receiver<oneshot::Sender<()>>,
}

/// The next restart asked of an edge; never, for a service.
async fn next_renewal(seat: &mut Option<EdgeSeat>) -> oneshot::Sender<()> {
    if let Some(seat) = seat
        && let Some(listening) = seat.renewals.recv().await
    {
        return listening;
    }
    std::future::pending().await
}

/// Keeps one process running until `stop`, then stops it; `listening` is
/// told when it first says it listens.
async fn supervise(
    exe: PathBuf,
    process: Process,
    mut seat: Option<EdgeSeat>,
    stop: CancellationToken,
    listening: oneshot::Sender<()>,
) {
    let mut listening = Some(listening);
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        let started = Instant::now();
        let mut command = Command::new(&exe);
        command
            .arg("serve")
            .arg(process.part.name())
            .args(&process.args)
            .env_remove(crate::POSTGRES_URL)
            .envs(process.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(seat) = &seat
            && let Err(error) = stack::edge_socket::pass(&mut command, &seat.socket)
        {
            eprintln!("[stack] cannot pass {} its socket: {error}", process.name);
            return;
        }
        let spawned = command.spawn();
        // The command holds its copy of the socket until dropped.
        drop(command);
        let mut child = match spawned {
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
                    // Asked to restart meanwhile: at once, saying when it listens.
                    renewed = next_renewal(&mut seat) => listening = Some(renewed),
                }
            }
            renewed = next_renewal(&mut seat) => {
                eprintln!("[stack] restarting {}", process.name);
                stop_child(&mut child, pid, &process.name).await;
                while output.join_next().await.is_some() {}
                if stop.is_cancelled() {
                    return;
                }
                // Its successor starts at once, and says when it listens.
                listening = Some(renewed);
            }
            () = stop.cancelled() => {
                stop_child(&mut child, pid, &process.name).await;
                while output.join_next().await.is_some() {}
                eprintln!("[stack] {} stopped", process.name);
                return;
            }
        }
    }
}

/// SIGTERM lets it drain; it is killed if it takes too long.
async fn stop_child(child: &mut Child, pid: u32, name: &str) {
    let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    if tokio::time::timeout(STOP_LIMIT, child.wait()).await.is_err() {
        eprintln!("[stack] {name} did not stop within {STOP_LIMIT:?}; killing it");
        let _ = child.kill().await;
    }
}

/// Copies a child's output line by line, each line prefixed; tells
/// `listening` when a line says where it listens (every dishpatch binary's
/// first line on stdout does).
async fn forward(
    stream: impl AsyncRead + Unpin,
    prefix: String,
    to_stderr: bool,
    mut listening: Option<oneshot::Sender<()>>,
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
