//! `stack probe`, as a Kubernetes exec probe runs it in a service's
//! container: over mutual TLS, with the service's own environment.

use std::{process::Output, time::Duration};
use test_support::{eventually, process::ServiceProcess};

/// `stack probe restaurant-svc` with `env` and `args`.
fn probe(env: &[(String, String)], args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(["probe", "restaurant-svc"])
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .output()
        .unwrap()
}

#[tokio::test]
async fn probes_a_service_over_mutual_tls_as_its_container_would() {
    let (certs, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    stack::certs::make(certs.path(), &["restaurant-svc"]).unwrap();
    let files = stack::certs::files(certs.path(), "restaurant-svc");
    let store = format!("sqlite://{}", data.path().join("restaurant.db").display());
    let mut args = vec![
        "serve",
        "restaurant-svc",
        "--listen",
        "0.0.0.0:0",
        "--drain",
        "10s",
        "--database-url",
        &store,
    ];
    let tls = files.args();
    args.extend(tls.iter().map(String::as_str));
    let service = ServiceProcess::start(env!("CARGO_BIN_EXE_stack"), &args).await;

    // The container's environment: where it listens (on every address),
    // and its certificate.
    let mut env = vec![(
        "LISTEN_ADDR".to_owned(),
        format!("0.0.0.0:{}", service.addr().port()),
    )];
    env.extend(tls.chunks(2).map(|flag| {
        let name = flag[0].trim_start_matches("--").replace('-', "_").to_uppercase();
        (name, flag[1].clone())
    }));
    for args in [&[][..], &["--ready"]] {
        let answered = probe(&env, args);
        assert!(
            answered.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&answered.stderr)
        );
    }
    let without_tls: Vec<_> = env
        .iter()
        .filter(|(name, _)| !name.starts_with("TLS_"))
        .cloned()
        .collect();
    let refused = probe(&without_tls, &[]);
    assert!(
        !refused.status.success(),
        "the service refuses a probe without a certificate"
    );

    // Draining: not ready, and alive.
    service.terminate();
    let not_ready = eventually(
        "the probe to find it draining",
        Duration::from_secs(5),
        || async {
            let answered = probe(&env, &["--ready"]);
            (!answered.status.success()).then_some(answered)
        },
    )
    .await;
    assert!(
        String::from_utf8_lossy(&not_ready.stderr).contains("NOT_SERVING"),
        "{not_ready:?}"
    );
    let alive = probe(&env, &[]);
    assert!(
        alive.status.success(),
        "{}",
        String::from_utf8_lossy(&alive.stderr)
    );

    // Gone: neither alive nor ready, and the probe says why.
    let mut service = service;
    service.kill().await;
    for args in [&[][..], &["--ready"]] {
        let down = probe(&env, args);
        let said = String::from_utf8_lossy(&down.stderr);
        assert!(!down.status.success(), "{args:?}: {said}");
        assert!(
            said.contains(&format!("connecting to 127.0.0.1:{}", service.addr().port()))
                && said.contains("Connection refused"),
            "{args:?}: {said}"
        );
    }
}
