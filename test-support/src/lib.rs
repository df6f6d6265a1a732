//! The harness every dishpatch integration test shares: real services on
//! `127.0.0.1:0` with isolated stores, real binaries for signal tests, a
//! private PostgreSQL, and grpcurl.
//!
//! Nothing here sleeps and hopes: services are bound before they are
//! spawned, and time-based checks poll for their condition ([`eventually`]).

pub mod grpcurl;
pub mod postgres;
pub mod process;
pub mod services;
pub mod stack;
pub mod stores;
pub mod tls;

pub use services::{RunningService, start};
pub use stack::{StackOptions, TestStack, spawn_stack};
pub use stores::{Backend, TestStore};

use std::{future::Future, time::Duration};

/// Polls `check` every 20 ms until it returns `Some`, for at most `limit`;
/// panics naming `what` if it never does.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Defines each named `async fn test(backend: Backend)` as two tests, one
/// on SQLite (`sqlite::name`) and one on PostgreSQL (`postgres::name`).
#[macro_export]
macro_rules! on_each_backend {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test($crate::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    if $crate::postgres::skipped() {
                        return;
                    }
                    super::$test($crate::Backend::Postgres).await
                }
            )+
        }
    };
}

/// Asserts that a call was refused with `code` and a message containing
/// `fragment`.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    fragment: &str,
) {
    let status = result.expect_err("the request should be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(fragment),
        "{:?} should mention {fragment:?}",
        status.message()
    );
}

/// A `grpc.health.v1` client of the service at `url`.
pub async fn health_client(
    url: String,
) -> tonic_health::pb::health_client::HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("a valid URL")
        .connect()
        .await
        .expect("connects");
    tonic_health::pb::health_client::HealthClient::new(channel)
}
