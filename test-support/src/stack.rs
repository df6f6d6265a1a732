//! A whole stack for tests, laid out by the launcher's own [`Plan`]: every
//! service replica a real OS process (so a test can SIGSTOP, kill and
//! restart it), on free ports, sharing a SQLite file per service in a
//! temporary folder; and the settings of an edge in front of them, which a
//! test runs in its own process.

use crate::process::{ServiceProcess, binary};
use edge::auth::{Principal, Role, dev};
use stack::{Layout, Part, Plan, Process};
use std::{net::SocketAddr, sync::Arc, time::Duration};

/// How a test wants its stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Replicas of each service.
    pub replicas: u16,
    /// How long a replica drains on SIGTERM (`100ms`, `5s`, …).
    pub drain: &'static str,
    /// Environment variables every replica is started with.
    pub env: Vec<(&'static str, String)>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            replicas: 2,
            drain: "100ms",
            env: Vec::new(),
        }
    }
}

/// The replicas of a stack, running.
#[derive(Debug)]
pub struct TestStack {
    /// restaurant-svc's replicas.
    pub restaurants: Vec<ServiceProcess>,
    /// order-svc's replicas.
    pub orders: Vec<ServiceProcess>,
    /// notify-svc's replicas.
    pub notifications: Vec<ServiceProcess>,
    plan: Plan,
    layout: Layout,
    env: Vec<(&'static str, String)>,
    signing_key: Arc<dev::DevKey>,
    _data: tempfile::TempDir,
}

/// Starts a stack's service replicas as processes, each dependency before
/// its callers, sized for tests: short drains, probes every 100 ms, fast
/// polling and backoff.
pub async fn spawn_stack(options: StackOptions) -> TestStack {
    let data = tempfile::tempdir().expect("a temporary folder");
    let drain = ["--drain".to_owned(), options.drain.to_owned()];
    let args = |extra: &[&str]| -> Vec<String> {
        drain
            .iter()
            .cloned()
            .chain(extra.iter().map(|arg| (*arg).to_owned()))
            .collect()
    };
    let layout = Layout {
        replicas: options.replicas,
        edge_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        edges: 1,
        service_port: 0,
        data_dir: data.path().to_owned(),
        stores: stack::Stores::Sqlite,
        extra_args: vec![
            (Part::RestaurantSvc, args(&[])),
            (Part::NotifySvc, args(&["--poll-interval", "50ms"])),
            (
                Part::OrderSvc,
                args(&[
                    "--relay-poll-interval",
                    "50ms",
                    "--relay-max-backoff",
                    "200ms",
                    "--probe-interval",
                    "100ms",
                ]),
            ),
            (
                Part::Edge,
                [
                    "--probe-interval",
                    "100ms",
                    "--probe-timeout",
                    "500ms",
                    "--deadline",
                    "3s",
                    "--slow-start",
                    "0s",
                    // Tests send as fast as they can as one caller; the
                    // tests of rate limits set their own.
                    "--rate-limit-reads",
                    "0",
                    "--rate-limit-writes",
                    "0",
                    "--rate-limit-sign-ins",
                    "0",
                ]
                .map(str::to_owned)
                .to_vec(),
            ),
        ],
    };
    let signing_key = Arc::new(stack::signing_key(&layout.data_dir).expect("the stack's signing key"));
    // The plan's ports were free when it was made; another process may
    // take one before its replica binds it. Then the replicas started so
    // far stop (dropped), and a new plan is tried.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let plan = Plan::new(&layout).expect("a plan on free ports");
        let (mut restaurants, mut orders, mut notifications) = (Vec::new(), Vec::new(), Vec::new());
        let mut failed = None;
        for process in plan.processes.iter().filter(|process| process.part != Part::Edge) {
            let replicas = match process.part {
                Part::RestaurantSvc => &mut restaurants,
                Part::OrderSvc => &mut orders,
                _ => &mut notifications,
            };
            match start(process, &options.env).await {
                Ok(started) => replicas.push(started),
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        match failed {
            None => {
                return TestStack {
                    restaurants,
                    orders,
                    notifications,
                    plan,
                    layout,
                    env: options.env,
                    signing_key,
                    _data: data,
                };
            }
            Some(error) if attempts < 3 => eprintln!("starting the stack again on other ports: {error}"),
            Some(error) => panic!("{error}"),
        }
    }
}

async fn start(process: &Process, env: &[(&'static str, String)]) -> Result<ServiceProcess, String> {
    let args: Vec<&str> = process
        .args
        .iter()
        .map(|arg| arg.to_str().expect("the plan's flags are UTF-8"))
        .collect();
    let env: Vec<(&str, &str)> = env
        .iter()
        .chain(&process.env)
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    ServiceProcess::try_start_with_env(&binary(process.part.name()), &args, &env).await
}

impl TestStack {
    fn replicas_mut(&mut self, part: Part) -> &mut Vec<ServiceProcess> {
        match part {
            Part::RestaurantSvc => &mut self.restaurants,
            Part::OrderSvc => &mut self.orders,
            Part::NotifySvc => &mut self.notifications,
            Part::Edge => unreachable!("the edge runs in the test"),
        }
    }

    /// Starts replica `index` of `part` again, on its address and store,
    /// after it was killed.
    pub async fn restart(&mut self, part: Part, index: usize) {
        let process = self
            .plan
            .replicas(part)
            .nth(index)
            .expect("a replica of the plan")
            .clone();
        let started = start(&process, &self.env).await;
        self.replicas_mut(part)[index] = started.unwrap_or_else(|error| panic!("{error}"));
    }

    /// A token for `principal`, valid for an hour, signed with the key
    /// the plan's edge trusts.
    pub fn token(&self, principal: &Principal) -> String {
        self.token_for(principal, Duration::from_secs(3600))
    }

    /// A token for `principal` valid for `ttl`, rounded down to whole
    /// seconds.
    pub fn token_for(&self, principal: &Principal, ttl: Duration) -> String {
        self.signing_key.sign(principal, dev::ISSUER, dev::AUDIENCE, ttl)
    }

    /// A token for the customer `sub`.
    pub fn customer_token(&self, sub: &str) -> String {
        self.token(&Principal::new(sub.to_owned(), Role::Customer, vec![]).expect("a customer"))
    }

    /// A token for an admin, who may do everything.
    pub fn admin_token(&self) -> String {
        self.token(&Principal::new("test-admin".to_owned(), Role::Admin, vec![]).expect("an admin"))
    }

    /// The folder of the stack's signing key and of the JWKS document its
    /// edge reads (tests rotate keys there).
    pub fn auth_dir(&self) -> std::path::PathBuf {
        self.layout.auth_dir()
    }

    /// The stack's signing key, for tokens of any claims.
    pub fn signing_key(&self) -> &dev::DevKey {
        &self.signing_key
    }

    /// The flags of an edge on any free port in front of every replica.
    pub fn edge_args(&self) -> Vec<String> {
        let edge = self.plan.edge(
            self.layout.edge_listen,
            usize::from(self.layout.replicas),
            &self.layout,
        );
        std::iter::once("edge".to_owned())
            .chain(edge.args.iter().map(|arg| arg.to_string_lossy().into_owned()))
            .collect()
    }
}
