//! The REST API's contract: the OpenAPI document the edge serves is the
//! checked-in `edge/openapi.json`, so a change of contract shows in review.
//! After changing it on purpose: `UPDATE_OPENAPI=1 cargo test -p edge contract`.

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

async fn served() -> String {
    let request = Request::get("/openapi.json").body(Body::empty()).unwrap();
    let response = super::router::router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn the_served_document_is_the_checked_in_one() {
    let served = served().await;
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(CHECKED_IN, format!("{served}\n")).unwrap();
    }
    let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        checked_in.trim_end() == served,
        "the served OpenAPI document differs from {CHECKED_IN}: review the change, then run \
         `UPDATE_OPENAPI=1 cargo test -p edge contract` to update the copy"
    );
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_covers_every_route() {
    let document: Value = serde_json::from_str(&served().await).unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    let paths: Vec<&str> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        paths,
        [
            "/api/dev/sign-in",
            "/api/notifications",
            "/api/notifications/stream",
            "/api/orders",
            "/api/orders/{id}",
            "/api/orders/{id}/status",
            "/api/restaurants",
            "/api/restaurants/{id}",
            "/api/restaurants/{id}/menu",
            "/api/restaurants/{id}/menu/items",
            "/health",
        ]
    );
    let place = &document["paths"]["/api/orders"]["post"];
    assert_eq!(place["operationId"], "placeOrder");
    for status in ["201", "400", "404", "409", "413", "415", "502", "503", "504"] {
        assert!(
            place["responses"][status].is_object(),
            "placing an order documents {status}"
        );
    }
    assert!(place["responses"]["503"]["headers"]["Retry-After"].is_object());
    assert!(place["responses"]["201"]["headers"]["x-served-by"].is_object());
    assert_eq!(
        place["responses"]["201"]["links"]["GetOrder"]["operationId"],
        "getOrder"
    );
    let name = &document["components"]["schemas"]["Name"];
    assert_eq!(name["maxLength"], 100, "{name}");
}

/// The most schemathesis may take (its own `--max-time`, then a margin).
const FUZZ_TIME: std::time::Duration = std::time::Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread")]
async fn the_api_keeps_its_contract_under_fuzzing() {
    let Some(schemathesis) = schemathesis() else {
        return;
    };
    let fleet = super::Fleet::start().await;
    // Hypothesis keeps what it found in its working folder: a fresh one.
    let work = tempfile::tempdir().unwrap();
    let seed = std::env::var("DISHPATCH_FUZZ_SEED").unwrap_or_else(|_| "20261201".to_owned());
    let run = tokio::process::Command::new(schemathesis)
        .current_dir(work.path())
        .arg("--no-color")
        .arg("--config-file")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml"))
        .arg("run")
        .arg(fleet.url("/openapi.json"))
        // Every check, every phase (examples, coverage, fuzzing, stateful
        // through the document's links), bounded.
        .args(["--checks", "all", "--max-examples", "25", "--workers", "1"])
        // As an admin, who may call every operation (the checks send no
        // token too, and expect 401 where the document says one is needed).
        .args([
            "--header",
            &format!("Authorization: Bearer {}", fleet.admin_token()),
        ])
        .args(["--max-time", &(FUZZ_TIME.as_secs() - 30).to_string()])
        .args(["--seed", &seed])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(FUZZ_TIME, run)
        .await
        .expect("schemathesis stops within its time")
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found the API breaking its contract (seed {seed}; set DISHPATCH_FUZZ_SEED to try \
         others):\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}

/// schemathesis, or `None` where it is missing and the test was told to
/// skip.
fn schemathesis() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("schemathesis"))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        if std::env::var_os("DISHPATCH_SKIP_SCHEMATHESIS").is_some() {
            eprintln!("skipped: schemathesis is not installed and DISHPATCH_SKIP_SCHEMATHESIS is set");
            return None;
        }
        panic!(
            "schemathesis was not found on PATH. Install it with `pip install schemathesis` \
             (./scripts/test does), or set DISHPATCH_SKIP_SCHEMATHESIS=1 to skip the contract fuzzing."
        );
    }
    found
}
