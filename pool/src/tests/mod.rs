//! The pool on paused time, with replicas served in this process.

mod balancing;
mod ejection;
mod metrics;
mod panic;
mod probing;
mod retries;
mod support;
mod timeouts;
