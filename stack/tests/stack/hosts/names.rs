//! The test network's name server: dnsmasq on its own host, answering for
//! the service names from a hosts file the test rewrites, as a cluster's
//! DNS answers for a headless Service with one address per ready pod.

use super::network::Host;
use std::{
    net::Ipv4Addr,
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// dnsmasq, running in its host.
#[derive(Debug)]
pub(super) struct NameServer {
    process: Child,
    records: PathBuf,
    domain: &'static str,
    folder: tempfile::TempDir,
}

impl NameServer {
    /// Serves no names yet, in `host`, for names under `domain`.
    pub(super) fn start(host: &Host, domain: &'static str) -> Self {
        let folder = tempfile::tempdir().unwrap();
        // dnsmasq started as root reads its files as `nobody`.
        std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let records = folder.path().join("hosts");
        std::fs::write(&records, "").unwrap();
        let pid_file = folder.path().join("pid");
        let mut process = Command::new("ip")
            .args(host.exec(&dnsmasq()))
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
            ])
            .args(["--local-ttl=0", "--conf-file=/dev/null", "--port=53"])
            .arg(format!("--listen-address={}", host.ip))
            .arg(format!("--addn-hosts={}", records.display()))
            .arg(format!("--pid-file={}", pid_file.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting dnsmasq");
        // It writes its pid file once its sockets are bound.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .is_empty()
        {
            if Instant::now() > deadline {
                process.kill().ok();
                panic!("dnsmasq did not start in 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            process,
            records,
            domain,
            folder,
        }
    }

    /// Makes each name (under the domain) resolve to its addresses, and no
    /// other name to anything; answered from the next query on.
    pub(super) fn serve(&self, names: &[(&str, Vec<Ipv4Addr>)]) {
        let mut records = String::new();
        for (name, addresses) in names {
            for address in addresses {
                records.push_str(&format!("{address} {name}.{}\n", self.domain));
            }
        }
        let next = self.folder.path().join("hosts.next");
        std::fs::write(&next, records).unwrap();
        std::fs::rename(&next, &self.records).unwrap();
        // SIGHUP: dnsmasq reads its hosts files again.
        let pid = nix::unistd::Pid::from_raw(self.process.id().cast_signed());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        self.process.kill().ok();
        self.process.wait().ok();
    }
}

/// dnsmasq's path: on PATH, or where Debian's dnsmasq-base puts it.
fn dnsmasq() -> String {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("dnsmasq"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/dnsmasq")])
        .find(|path| path.is_file())
        .expect("dnsmasq is installed (Debian's dnsmasq-base; ./scripts/test installs it)")
        .display()
        .to_string()
}
