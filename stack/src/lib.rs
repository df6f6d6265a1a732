//! The topology of a dishpatch stack on one machine: [`Plan`] lays out the
//! edge and the replicas of every service (ports, stores, the flags that
//! connect them). The `stack` binary runs a plan, supervised; the benchmark
//! suite and the test harness start theirs from the same plan.

pub mod certs;
pub mod edge_socket;
mod plan;
pub mod postgres;

pub use plan::{
    DEFAULT_EDGES, Layout, Part, Plan, Process, Stores, auth_dir, database_name, database_url,
    edge_auth_args, signing_key,
};
