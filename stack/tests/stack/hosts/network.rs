//! Hosts made of Linux network namespaces. Each host is a namespace with
//! one interface, `eth0`, whose other end is a port of a bridge in a
//! namespace of its own (the switch); the hosts' addresses are in
//! 10.77.0.0/24, and no namespace has a route anywhere else. Nothing in the
//! machine's own namespace has an address in that network, so no packet of
//! the test can leave it, nor any from outside reach it.
//!
//! A program runs in a host through `ip netns exec`, which also gives it the
//! host's own `/etc/resolv.conf` (from `/etc/netns/<namespace>/`): the
//! test network's name server, as a cluster's pods have theirs. The test's
//! own thread enters the client host with `setns`.
//!
//! Namespaces are named `dishpatch-<pid>-<host>`; they are removed when the
//! network is dropped, and those of a test process that is gone (killed
//! before it could clean up) when the next network is made.

use std::{
    net::Ipv4Addr,
    path::PathBuf,
    process::{Command, Stdio},
    sync::Mutex,
};

/// The switch's bridge.
const BRIDGE: &str = "br0";
/// Where `ip netns` keeps its namespaces, by name.
const NAMESPACES: &str = "/var/run/netns";
/// Where `ip netns exec` finds a namespace's own `/etc` files.
const NAMESPACE_ETC: &str = "/etc/netns";

/// The test network: a switch, and the hosts plugged into it.
#[derive(Debug)]
pub(super) struct Network {
    prefix: String,
    /// Every namespace made, the switch first.
    namespaces: Mutex<Vec<String>>,
    /// The name server every host's resolver asks, and its search domain.
    resolver: (Ipv4Addr, &'static str),
}

/// A host of the network.
#[derive(Debug, Clone)]
pub(super) struct Host {
    pub(super) name: &'static str,
    pub(super) namespace: String,
    pub(super) ip: Ipv4Addr,
}

impl Network {
    /// A network with only its switch, whose hosts' resolvers will ask
    /// `name_server` and search `domain`; `None`, after saying why on
    /// stderr, where this machine cannot make network namespaces (not
    /// root, say).
    pub(super) fn create(name_server: Ipv4Addr, domain: &'static str) -> Option<Self> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: the multi-host test makes network namespaces, which needs root");
            return None;
        }
        if let Err(error) = ip(&["-V"]) {
            eprintln!("SKIPPED: the multi-host test needs iproute2's `ip`: {error}");
            return None;
        }
        remove_stale_namespaces();
        let network = Self {
            prefix: format!("dishpatch-{}-", std::process::id()),
            namespaces: Mutex::new(Vec::new()),
            resolver: (name_server, domain),
        };
        let switch = network.namespace("switch");
        if let Err(error) = ip(&["netns", "add", &switch]) {
            eprintln!("SKIPPED: the multi-host test cannot make a network namespace here: {error}");
            return None;
        }
        network.namespaces.lock().unwrap().push(switch.clone());
        ip(&["-n", &switch, "link", "add", BRIDGE, "type", "bridge"]).unwrap();
        ip(&["-n", &switch, "link", "set", BRIDGE, "up"]).unwrap();
        Some(network)
    }

    /// A new host, `name` at 10.77.0.`last_octet`, plugged into the switch.
    pub(super) fn add_host(&self, name: &'static str, last_octet: u8) -> Host {
        let host = Host {
            name,
            namespace: self.namespace(name),
            ip: Ipv4Addr::new(10, 77, 0, last_octet),
        };
        let (ns, switch, port) = (host.namespace.as_str(), self.switch(), host.port());
        ip(&["netns", "add", ns]).unwrap();
        self.namespaces.lock().unwrap().push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"]).unwrap();
        ip(&[
            "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ])
        .unwrap();
        ip(&["-n", &switch, "link", "set", &port, "master", BRIDGE, "up"]).unwrap();
        ip(&["-n", ns, "addr", "add", &format!("{}/24", host.ip), "dev", "eth0"]).unwrap();
        ip(&["-n", ns, "link", "set", "eth0", "up"]).unwrap();
        let etc = PathBuf::from(NAMESPACE_ETC).join(ns);
        std::fs::create_dir_all(&etc).unwrap();
        let (server, domain) = self.resolver;
        std::fs::write(
            etc.join("resolv.conf"),
            format!("nameserver {server}\nsearch {domain}\noptions timeout:1 attempts:2\n"),
        )
        .unwrap();
        host
    }

    /// Takes `host` off the network, as a pulled cable would: its
    /// processes run on, and nothing reaches them or comes from them.
    pub(super) fn unplug(&self, host: &Host) {
        ip(&["-n", &self.switch(), "link", "set", &host.port(), "down"]).unwrap();
    }

    /// Puts `host` back on the network.
    pub(super) fn plug(&self, host: &Host) {
        ip(&["-n", &self.switch(), "link", "set", &host.port(), "up"]).unwrap();
    }

    fn namespace(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    fn switch(&self) -> String {
        self.namespace("switch")
    }
}

impl Host {
    /// The arguments of `ip` that run `program` in this host.
    pub(super) fn exec(&self, program: &str) -> Vec<String> {
        ["netns", "exec", &self.namespace, program]
            .map(str::to_owned)
            .to_vec()
    }

    /// Moves the calling thread into this host (and the threads it starts
    /// after): the sockets it opens are this host's.
    pub(super) fn enter(&self) {
        let namespace = std::fs::File::open(PathBuf::from(NAMESPACES).join(&self.namespace))
            .expect("opening the host's namespace");
        nix::sched::setns(namespace, nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("entering the host's namespace");
    }

    /// The switch's port this host is plugged into.
    fn port(&self) -> String {
        format!("v-{}", self.name)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for namespace in self.namespaces.lock().unwrap().drain(..).rev() {
            remove_namespace(&namespace);
        }
    }
}

/// Runs `ip` with `args`; its error output if it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("running ip: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Removes a namespace and its `/etc` files. Its interfaces go with it
/// (the veth's other end too).
fn remove_namespace(namespace: &str) {
    if let Err(error) = ip(&["netns", "delete", namespace]) {
        eprintln!("removing the test network: {error}");
    }
    std::fs::remove_dir_all(PathBuf::from(NAMESPACE_ETC).join(namespace)).ok();
}

/// Removes the namespaces of test processes that are gone.
fn remove_stale_namespaces() {
    let Ok(entries) = std::fs::read_dir(NAMESPACES) else {
        return;
    };
    for name in entries
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
    {
        let pid = name
            .strip_prefix("dishpatch-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !PathBuf::from(format!("/proc/{pid}")).exists()) {
            remove_namespace(&name);
        }
    }
}
