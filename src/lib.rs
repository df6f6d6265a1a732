//! dishpatch's contracts and the small runtime every dishpatch binary shares.
//!
//! - [`proto`]: the generated gRPC contracts and their descriptor set.
//! - [`server`]: serve a tonic service with `grpc.health.v1`, server
//!   reflection and a graceful, draining shutdown; [`tls`]: mutual TLS
//!   between the services and their callers.
//! - [`binary`], [`shutdown`], [`telemetry`], [`metrics`], [`otlp`], [`child`]:
//!   the `main` of every binary, signals, logs, Prometheus metrics, spans
//!   exported over OTLP, and starting one as a child process.
//! - [`ids`], [`time`], [`page`], [`validate`], [`call`], [`trace`], [`wire`]: the
//!   conventions every contract shares (typed ids, timestamps, paging, input checks,
//!   request id, deadline and trace context propagation, the names of headers and
//!   metadata).
//! - [`store`], [`error`] and [`service`] (feature `store`): a service's SQLite or
//!   PostgreSQL store, the failures it answers with, and the assembled service
//!   every service binary runs.
//!
//! Nothing here knows about restaurants, orders or notifications beyond the
//! shape of their ids.

pub mod binary;
pub mod call;
pub mod child;
#[cfg(feature = "store")]
pub mod error;
pub mod ids;
pub mod metrics;
pub mod otlp;
pub mod page;
pub mod proto;
pub mod server;
#[cfg(feature = "store")]
pub mod service;
pub mod shutdown;
#[cfg(feature = "store")]
pub mod store;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod trace;
pub mod validate;
pub mod wire;
