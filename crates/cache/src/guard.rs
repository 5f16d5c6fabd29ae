//! Every call to the shared store goes through here: a per-call timeout, the circuit
//! breaker, and the error counters. An error never leaves the cache layer as a failure of the
//! request: callers fall back to PostgreSQL.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use waiaas_domain::ports::{CacheEntry, CacheError, CacheStore, Lookup, WriteOutcome};

use crate::breaker::Breaker;

/// The store behind its breaker and timeout.
pub struct Guarded {
    store: Arc<dyn CacheStore>,
    breaker: Breaker,
    timeout: Duration,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("breaker", &self.breaker)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Guarded {
    /// Guards `store` with a breaker opening after `failures` consecutive failures for
    /// `open_for`, and a `timeout` per call.
    #[must_use]
    pub fn new(
        store: Arc<dyn CacheStore>,
        failures: u32,
        open_for: Duration,
        timeout: Duration,
    ) -> Self {
        Self {
            store,
            breaker: Breaker::new("redis", failures, open_for),
            timeout,
        }
    }

    /// The breaker.
    #[must_use]
    pub const fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// The raw store, for operator commands that must reach it regardless of the breaker.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn CacheStore> {
        &self.store
    }

    async fn call<T, F>(&self, op: &'static str, f: F) -> Result<T, CacheError>
    where
        F: Future<Output = Result<T, CacheError>>,
    {
        if !self.breaker.allow() {
            metrics::counter!("waiaas_cache_skipped_total", "op" => op).increment(1);
            return Err(CacheError::Unavailable("circuit breaker open".into()));
        }
        let result = match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(CacheError::Timeout),
        };
        match &result {
            Ok(_) => self.breaker.success(),
            Err(e) => {
                self.breaker.failure();
                let reason = match e {
                    CacheError::Timeout => "timeout",
                    CacheError::Unavailable(_) => "unavailable",
                    CacheError::Unknown(_) => "error",
                };
                metrics::counter!("waiaas_cache_errors_total", "op" => op, "reason" => reason)
                    .increment(1);
                tracing::debug!(op, error = %e, "Cache call failed");
            }
        }
        result
    }

    /// Reads an entry for a reader of `epoch`; on a miss, with the key's fill token.
    ///
    /// # Errors
    /// When the store fails, times out, or the breaker is open.
    pub async fn lookup(
        &self,
        key: &str,
        epoch: i64,
        miss: bool,
        candidate: &str,
        token_ttl: Duration,
    ) -> Result<Lookup, CacheError> {
        self.call(
            "lookup",
            self.store.lookup(key, epoch, miss, candidate, token_ttl),
        )
        .await
    }

    /// Fills an entry read from PostgreSQL after a miss (set-if-newer, with the miss's
    /// token).
    ///
    /// # Errors
    /// When the store fails, times out, or the breaker is open.
    pub async fn fill(
        &self,
        key: &str,
        entry: &CacheEntry,
        ttl: Duration,
        token: &str,
    ) -> Result<WriteOutcome, CacheError> {
        self.call("fill", self.store.fill(key, entry, ttl, token))
            .await
    }

    /// Writes through a committed change.
    ///
    /// # Errors
    /// When the store fails, times out, or the breaker is open.
    pub async fn write(
        &self,
        key: &str,
        entry: &CacheEntry,
        ttl: Duration,
    ) -> Result<WriteOutcome, CacheError> {
        self.call("write", self.store.write(key, entry, ttl)).await
    }

    /// Checks the store answers (the breaker's probe when it is due).
    ///
    /// # Errors
    /// When it does not.
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.call("ping", self.store.ping()).await
    }

    /// The store server's identity, to notice a restart.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn server_id(&self) -> Result<Option<String>, CacheError> {
        self.call("server_id", self.store.server_id()).await
    }
}
