//! DNS names as replica lists, against a real DNS server: dnsmasq on a
//! loopback port, serving records from a hosts file the test rewrites, and
//! real replicas (gRPC health servers) on 127.0.0.2, .3 and .4 at one port.
//!
//! Needs dnsmasq (Debian's `dnsmasq-base`; `./scripts/test` installs it).
//! Set DISHPATCH_SKIP_DNSMASQ=1 to skip these tests knowingly.

use dishpatch::call::CallContext;
use dishpatch_pool::{CallKind, PoolSettings, ReplicaPool, ReplicaSpec};
use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic_health::{
    pb::{HealthCheckRequest, health_client::HealthClient},
    server::HealthReporter,
};

const HEALTH_NAME: &str = "dns.test.v1.Service";
const NAME: &str = "replicas.dishpatch.test";

/// dnsmasq answering for [`NAME`] from a hosts file.
struct DnsServer {
    process: Child,
    hosts: PathBuf,
    port: u16,
    _folder: tempfile::TempDir,
}

impl DnsServer {
    /// Serves [`NAME`] as `ips`, or `None` where dnsmasq is missing and
    /// the test was told to skip.
    fn start(ips: &[u8]) -> Option<Self> {
        let Some(dnsmasq) = dnsmasq() else {
            if std::env::var_os("DISHPATCH_SKIP_DNSMASQ").is_some() {
                eprintln!("skipped: dnsmasq is not installed and DISHPATCH_SKIP_DNSMASQ is set");
                return None;
            }
            panic!(
                "dnsmasq was not found (looked in $PATH and /usr/sbin). Install Debian's \
                 `dnsmasq-base` package (./scripts/test does), or set DISHPATCH_SKIP_DNSMASQ=1 \
                 to skip the DNS tests."
            );
        };
        let folder = tempfile::tempdir().expect("a temporary folder");
        // dnsmasq started as root reads the file as `nobody`.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let hosts = folder.path().join("hosts");
        std::fs::write(&hosts, records(ips)).expect("writing the hosts file");
        // A port free now may be taken before dnsmasq binds it (on UDP or
        // on TCP, which it binds too): then it exits, and another is tried.
        for _ in 0..5 {
            let port = free_udp_and_tcp_port();
            let mut process = Command::new(&dnsmasq)
                .args([
                    "--keep-in-foreground",
                    "--no-resolv",
                    "--no-hosts",
                    "--bind-interfaces",
                ])
                .args([
                    "--listen-address=127.0.0.1",
                    "--local-ttl=0",
                    "--conf-file=/dev/null",
                ])
                .arg(format!("--port={port}"))
                .arg(format!("--addn-hosts={}", hosts.display()))
                .arg(format!("--pid-file={}", folder.path().join("pid").display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting dnsmasq");
            if answers(&mut process, port) {
                return Some(Self {
                    process,
                    hosts,
                    port,
                    _folder: folder,
                });
            }
            process.kill().ok();
            process.wait().ok();
        }
        panic!("dnsmasq did not start on five free ports in a row");
    }

    /// Makes [`NAME`] resolve to 127.0.0.`ip` for each of `ips`.
    fn serve(&mut self, ips: &[u8]) {
        std::fs::write(&self.hosts, records(ips)).expect("writing the hosts file");
        // dnsmasq reads its hosts files again on SIGHUP.
        let pid = self.process.id().to_string();
        let status = Command::new("kill").args(["-HUP", &pid]).status().expect("kill");
        assert!(status.success());
    }

    /// Stops answering.
    fn stop(&mut self) {
        self.process.kill().ok();
        self.process.wait().ok();
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port free for UDP and TCP alike, now.
fn free_udp_and_tcp_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("a free TCP port");
        let port = tcp.local_addr().expect("bound").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Whether dnsmasq, just started as `process`, answers on `port` (within
/// 5 s, while it runs): before it does, a SIGHUP would end it.
fn answers(process: &mut Child, port: u16) -> bool {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    // A query for the A record of `.` (root): any answer will do.
    let query = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1];
    for _ in 0..50 {
        if matches!(process.try_wait(), Ok(Some(_))) {
            return false;
        }
        socket.send_to(&query, ("127.0.0.1", port)).ok();
        if socket.recv(&mut [0; 512]).is_ok() {
            return true;
        }
    }
    false
}

/// A hosts file's lines naming [`NAME`] 127.0.0.`ip` for each of `ips`.
fn records(ips: &[u8]) -> String {
    ips.iter().map(|ip| format!("127.0.0.{ip} {NAME}\n")).collect()
}

fn dnsmasq() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("dnsmasq"))
        .find(|candidate| candidate.is_file())
}

/// A replica: a health server at 127.0.0.`ip`:`port`, SERVING.
struct Replica {
    health: HealthReporter,
    stop: CancellationToken,
}

impl Replica {
    async fn start(ip: u8, port: u16) -> Option<Self> {
        let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, ip), port));
        let listener = tokio::net::TcpListener::bind(addr).await.ok()?;
        let (health, service) = tonic_health::server::health_reporter();
        health
            .set_service_status(HEALTH_NAME, tonic_health::ServingStatus::Serving)
            .await;
        let stop = CancellationToken::new();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    stop.clone().cancelled_owned(),
                ),
        );
        Some(Self { health, stop })
    }

    async fn set_serving(&self, serving: bool) {
        let status = if serving {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        self.health.set_service_status(HEALTH_NAME, status).await;
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Replicas at 127.0.0.2, .3 and .4, all on one port.
async fn three_replicas() -> (u16, [Replica; 3]) {
    for _ in 0..50 {
        let port = std::net::TcpListener::bind("127.0.0.2:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        if let (Some(a), Some(b), Some(c)) = (
            Replica::start(2, port).await,
            Replica::start(3, port).await,
            Replica::start(4, port).await,
        ) {
            return (port, [a, b, c]);
        }
    }
    panic!("no port free on 127.0.0.2, .3 and .4 at once");
}

fn pool(dns: &DnsServer, port: u16, dns_interval: Duration) -> ReplicaPool {
    let spec: ReplicaSpec = format!("dns://127.0.0.1:{}/{NAME}:{port}", dns.port)
        .parse()
        .unwrap();
    let mut settings = PoolSettings {
        dns_interval,
        slow_start: Duration::ZERO,
        ..PoolSettings::default()
    };
    settings.probe.interval = Duration::from_millis(200);
    ReplicaPool::new("dns-svc", HEALTH_NAME, &[spec], settings, None).unwrap()
}

/// The addresses in `pool`'s rotation.
fn in_rotation(pool: &ReplicaPool) -> BTreeSet<String> {
    pool.replica_states()
        .into_iter()
        .filter(|replica| replica.out_of_rotation.is_none())
        .map(|replica| replica.addr)
        .collect()
}

fn addrs(port: u16, ips: &[u8]) -> BTreeSet<String> {
    ips.iter().map(|ip| format!("127.0.0.{ip}:{port}")).collect()
}

async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A call through `pool`: the replica that answered.
async fn call(pool: &ReplicaPool) -> String {
    let context = CallContext::new(None, Some(Instant::now() + Duration::from_secs(2)));
    let request = HealthCheckRequest {
        service: HEALTH_NAME.into(),
    };
    let answered = pool
        .call(&context, CallKind::Read, request, |channel, request| async move {
            HealthClient::new(channel).check(request).await
        })
        .await
        .expect("a replica answers");
    answered.served_by.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_join_and_leave_as_the_records_change() {
    let (port, _replicas) = three_replicas().await;
    let Some(mut dns) = DnsServer::start(&[2, 3]) else {
        return;
    };
    let pool = pool(&dns, port, Duration::from_millis(200));
    let stop = CancellationToken::new();
    let background = pool.spawn(stop.clone());
    let soon = Duration::from_secs(5);

    eventually("both records' replicas in rotation", soon, || {
        in_rotation(&pool) == addrs(port, &[2, 3])
    })
    .await;
    let mut answered = BTreeSet::new();
    for _ in 0..4 {
        answered.insert(call(&pool).await);
    }
    assert_eq!(
        answered,
        addrs(port, &[2, 3]),
        "calls go to every resolved replica"
    );

    dns.serve(&[2, 3, 4]);
    eventually("a new record's replica to join", soon, || {
        in_rotation(&pool) == addrs(port, &[2, 3, 4])
    })
    .await;

    dns.serve(&[3, 4]);
    eventually("a removed record's replica to leave", soon, || {
        let known: BTreeSet<String> = pool.replica_states().into_iter().map(|r| r.addr).collect();
        known == addrs(port, &[3, 4])
    })
    .await;
    for _ in 0..4 {
        assert_ne!(call(&pool).await, format!("127.0.0.2:{port}"));
    }

    // The DNS server goes away: the pool keeps the replicas it last found.
    dns.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(in_rotation(&pool), addrs(port, &[3, 4]));
    call(&pool).await;

    stop.cancel();
    background.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_whose_replicas_all_failed_is_resolved_again_at_once() {
    let (port, replicas) = three_replicas().await;
    let Some(mut dns) = DnsServer::start(&[2]) else {
        return;
    };
    // Resolved again on its own only after a minute.
    let pool = pool(&dns, port, Duration::from_secs(60));
    let stop = CancellationToken::new();
    let background = pool.spawn(stop.clone());
    eventually("the first replica in rotation", Duration::from_secs(5), || {
        in_rotation(&pool) == addrs(port, &[2])
    })
    .await;

    // The name moves to .3, and its old replica stops serving.
    dns.serve(&[3]);
    let moved = Instant::now();
    replicas[0].set_serving(false).await;
    eventually("the name's new replica", Duration::from_secs(10), || {
        in_rotation(&pool) == addrs(port, &[3])
    })
    .await;
    assert!(
        moved.elapsed() < Duration::from_secs(10),
        "well before the minute"
    );
    assert_eq!(call(&pool).await, format!("127.0.0.3:{port}"));

    stop.cancel();
    background.await.unwrap();
}
