//! # waiaas-cache
//!
//! The cache layer of WAIaaS, written against the domain's ports only (it knows no Redis
//! type): versioned entries with set-if-newer fills and write-through after commit, a key
//! builder and TTL per kind, an in-process L1 for immutable entries, single-flight, a circuit
//! breaker with per-call timeouts, and the lease/epoch fence that keeps cached reads from
//! ever being older than an acknowledged write. Also the in-process fallbacks used while
//! Redis is gone, and the cached decorators of the domain's repositories.

pub mod breaker;
pub mod cached;
mod engine;
pub mod failover;
mod flight;
mod guard;
pub mod keys;
mod lease;
pub mod local;
mod read;
pub mod relay;
pub mod ttl;
pub mod versioned;
mod write;

#[cfg(test)]
mod tests;

pub use engine::{Cache, CacheConfig, CacheStats, L1_INVALIDATION_CHANNEL};
pub use keys::{Kind, is_valid_key};
pub use local::{LocalEventBus, LocalRateLimiter};
pub use relay::{DOORBELL_CHANNEL, Relay, RelayConfig};
pub use ttl::Ttls;
pub use write::{Change, Unfenced};
