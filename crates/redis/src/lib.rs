//! # waiaas-redis
//!
//! The Redis adapters of WAIaaS, over [fred]: the [`CacheStore`] (versioned entries with
//! set-if-newer Lua scripts), the [`RateLimiter`] (GCRA in Lua), the [`LockManager`] (token
//! locks) and the [`EventBus`] (pub/sub), for a standalone server, Redis Cluster or Sentinel.
//! All four are implemented by one cheap-to-clone [`Redis`] connection:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use waiaas_domain::ports::CacheStore;
//! use waiaas_redis::{Redis, RedisConfig};
//!
//! let redis = Redis::connect(&RedisConfig::standalone("redis://127.0.0.1:6379")).await?;
//! let cache: Arc<dyn CacheStore> = Arc::new(redis.clone());
//! # Ok(()) }
//! ```
//!
//! Redis is a disposable performance layer, so every call is built to fail fast rather
//! than wait for it:
//! - [`Redis::connect`] never fails because Redis is down: fred's `fail_fast = false`
//!   retries the first connection in the background, forever, with an exponential backoff
//!   (50 ms doubling, capped at `reconnect_max_delay`).
//! - Each command carries fred's per-command `fail_fast` option (an immediate error while
//!   the client is not connected, instead of queueing until it is), a timeout of
//!   `command_timeout` (also fred's `default_command_timeout`) and `max_attempts = 1`: a
//!   command in flight when its connection dies fails rather than being replayed later.
//! - A connection with a command unanswered for twice the command timeout (at least 1 s) is
//!   deemed unresponsive and replaced (fred's unresponsive check).
//!
//! A command that timed out after it was written may still run on the server later (fred
//! cannot take it back); one that timed out while queued is dropped unsent.
//!
//! Pub/sub runs on a second connection. After each (re)connection it subscribes to every
//! channel again, then bumps [`EventBus::status`]'s generation and reports itself connected;
//! a subscription stream that falls behind (and so lost messages) bumps it too. Channels
//! stay subscribed for the life of the connection.
//!
//! Every key and channel gets the configured `key_prefix` in front, verbatim.
//!
//! [`CacheStore`]: waiaas_domain::ports::CacheStore
//! [`RateLimiter`]: waiaas_domain::ports::RateLimiter
//! [`LockManager`]: waiaas_domain::ports::LockManager
//! [`EventBus`]: waiaas_domain::ports::EventBus
//! [`EventBus::status`]: waiaas_domain::ports::EventBus::status

mod bus;
mod cache_store;
mod client;
mod config;
mod error;
mod lock;
mod presence;
mod rate_limit;
mod script;

pub use client::Redis;
pub use config::{RedisConfig, RedisMode, RedisTls};
pub use error::RedisError;
