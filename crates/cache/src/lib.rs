//! # waiaas-cache
//!
//! The cache layer of WAIaaS, written against the domain's ports only (it knows no Redis
//! type). It also holds the in-process fallbacks used while Redis is unreachable.

pub mod local;

pub use local::{LocalEventBus, LocalRateLimiter};
