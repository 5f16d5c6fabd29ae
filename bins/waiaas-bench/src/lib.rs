//! # waiaas-bench
//!
//! Benchmarks of WAIaaS measured side by side with the limits of the same machine
//! (`pgbench`, `redis-benchmark`, a trivial axum handler), and the consistency checker that
//! looks for stale reads and lost money while it breaks Redis.

pub mod baseline;
pub mod check;
pub mod env;
pub mod load;
pub mod pgbench;
pub mod report;
pub mod scenarios;
