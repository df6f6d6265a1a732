//! Service binaries run as real OS processes, for what only a process can
//! show: signals, exit codes, restarts.

use std::{
    net::SocketAddr,
    process::ExitStatus,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Child,
};

/// The path of a workspace binary (`restaurant-svc`, `edge`, …), built
/// beside the test executables by `cargo test --workspace`.
pub fn binary(name: &str) -> String {
    let test_exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let path = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join(name))
        .expect("test executables live in target/<profile>/deps");
    assert!(
        path.is_file(),
        "{} is not built: run the tests with `cargo test --workspace`, which builds every binary",
        path.display()
    );
    path.display().to_string()
}

/// A running service binary. Killed when dropped; its log (stderr) is kept,
/// and printed if the test is failing.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl ServiceProcess {
    /// Starts `binary` with `args` and waits (at most 30 s) for the line on
    /// stdout that says where it listens.
    pub async fn start(binary: &str, args: &[&str]) -> Self {
        Self::try_start(binary, args)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// [`Self::start`], or why it did not listen (it exited: its address
    /// was taken, say).
    pub async fn try_start(binary: &str, args: &[&str]) -> Result<Self, String> {
        Self::try_start_with_env(binary, args, &[]).await
    }

    /// [`Self::try_start`] with these environment variables set.
    pub async fn try_start_with_env(
        binary: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        // Its log, at info whatever the test's RUST_LOG, is kept.
        let mut command = tokio::process::Command::new(binary);
        command
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped());
        let (mut child, addr) = dishpatch::child::start_listening(command, Duration::from_secs(30)).await?;
        let log = Arc::new(Mutex::new(String::new()));
        let mut log_lines = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
        tokio::spawn({
            let log = log.clone();
            async move {
                while let Ok(Some(line)) = log_lines.next_line().await {
                    let mut log = log.lock().expect("log lock");
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        Ok(Self { child, addr, log })
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` and its address, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How much memory it holds.
    pub fn resident(&self) -> Option<dishpatch::child::Resident> {
        dishpatch::child::resident(self.child.id()?)
    }

    /// Sends SIGTERM, as an orchestrator does to stop a service.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends SIGSTOP: it stays connected but answers nothing, as a hung
    /// process would, until [`Self::resume`].
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Sends SIGCONT after [`Self::pause`].
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the process is running");
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// Sends SIGKILL, as a crash would end it, and reaps it.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("killing the process");
    }

    /// Waits (at most `limit`) for it to exit.
    pub async fn wait(&mut self, limit: Duration) -> ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the service did not exit within {limit:?}"))
            .expect("waiting for the service")
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- log of the service on {} ---\n{}", self.addr, self.log());
        }
    }
}
