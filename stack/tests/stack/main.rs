//! The stack as a user runs it: the launcher on one machine, and the files
//! that run it in containers and on Kubernetes.

mod deploy;
mod hosts;
mod launcher;
mod probe;

/// A token `stack token` signs with the key in `data`.
fn token(data: &std::path::Path, role: &str, sub: &str) -> String {
    let token = std::process::Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(["token", "--role", role, "--sub", sub, "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    String::from_utf8(token.stdout).unwrap().trim().to_owned()
}
