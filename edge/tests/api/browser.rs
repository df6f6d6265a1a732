//! The web front end in a real browser: `edge/tests/browser/front_end.cjs`
//! drives Chromium (Debian's `chromium`, through npm's `playwright-core`,
//! both installed by `scripts/test`) against a fleet, doing what the script
//! asks for on the way (killing and restarting a replica, making a menu item
//! unavailable). Screenshots land in the target folder's
//! `tmp/browser-screenshots`.
//!
//! Without Chromium or playwright-core the test fails, saying how to get
//! them, unless `DISHPATCH_SKIP_BROWSER=1` is set.

use super::{A_RESTAURANT, Fleet};
use dishpatch::proto::restaurant::v1::{
    UpdateMenuItemRequest, restaurant_service_client::RestaurantServiceClient,
};
use stack::Part;
use std::{path::PathBuf, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::Command,
};

const SKIP_VARIABLE: &str = "DISHPATCH_SKIP_BROWSER";
/// The most the browser script may take (its own limit is 90 s).
const BROWSER_TIME: Duration = Duration::from_secs(120);

/// Where `scripts/test` installs playwright-core: `DISHPATCH_NODE_MODULES`,
/// else the dishpatch cache.
fn node_modules() -> PathBuf {
    if let Some(dir) = std::env::var_os("DISHPATCH_NODE_MODULES") {
        return dir.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"));
    cache.join("dishpatch/node/node_modules")
}

/// Chromium and playwright-core, or `None` (said on stderr) when the test
/// is to be skipped.
fn browser() -> Option<(PathBuf, PathBuf)> {
    if std::env::var(SKIP_VARIABLE).is_ok_and(|value| value == "1") {
        eprintln!("SKIPPED: the browser test ({SKIP_VARIABLE}=1)");
        return None;
    }
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let modules = node_modules();
    assert!(
        chromium.is_file() && modules.join("playwright-core").is_dir(),
        "the browser test needs Chromium ({}) and playwright-core (in {}): run ./scripts/test, which installs \
         both, or set {SKIP_VARIABLE}=1 to skip it",
        chromium.display(),
        modules.display()
    );
    Some((chromium, modules))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_front_end_works_in_a_real_browser() {
    let Some((chromium, modules)) = browser() else {
        return;
    };
    let mut fleet = Fleet::start().await;
    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/front_end.cjs");
    let mut node = Command::new("node")
        .arg(script)
        .env("BASE_URL", fleet.url(""))
        .env("RESTAURANT_ID", A_RESTAURANT.rsplit('/').next().unwrap())
        .env("CHROMIUM", &chromium)
        .env("NODE_PATH", &modules)
        .env("SCREENSHOTS", &screenshots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut stdin = node.stdin.take().unwrap();
    let mut stdout = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut stderr = node.stderr.take().unwrap();
    let errors = tokio::spawn(async move {
        let mut errors = String::new();
        stderr.read_to_string(&mut errors).await.ok();
        errors
    });
    // What the script says, doing what it asks for as it goes.
    let said = tokio::time::timeout(BROWSER_TIME, async {
        let mut said = String::new();
        while let Some(line) = stdout.next_line().await.unwrap() {
            match line.strip_prefix("ASK ") {
                Some(request) => {
                    do_as_asked(&mut fleet, request).await;
                    stdin.write_all(b"OK\n").await.unwrap();
                }
                None => said.push_str(&format!("{line}\n")),
            }
        }
        said
    })
    .await
    .expect("the browser test stops within its time");
    let status = node.wait().await.unwrap();
    assert!(
        status.success(),
        "the front end failed in the browser (screenshots in {}):\n{said}\n{}",
        screenshots.display(),
        errors.await.unwrap()
    );
}

/// Does what the browser script asked for.
async fn do_as_asked(fleet: &mut Fleet, request: &str) {
    match request.split(' ').collect::<Vec<_>>()[..] {
        ["unavailable", restaurant_id, menu_item_id] => {
            let addr = fleet.restaurants[0].addr();
            let mut client = RestaurantServiceClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
            client
                .update_menu_item(UpdateMenuItemRequest {
                    restaurant_id: restaurant_id.to_owned(),
                    menu_item_id: menu_item_id.to_owned(),
                    available: Some(false),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        ["kill", "restaurant-svc", index] => fleet.restaurants[index.parse::<usize>().unwrap()].kill().await,
        ["restart", "restaurant-svc", index] => {
            fleet.restart(Part::RestaurantSvc, index.parse().unwrap()).await
        }
        _ => panic!("the browser script asked for {request:?}"),
    }
}
