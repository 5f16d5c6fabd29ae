//! The cache port: a shared key-value store (Redis) holding versioned copies of rows.

use std::time::Duration;

use async_trait::async_trait;

/// A cached value with the version of the row it copies and the cache epoch it was written
/// in. A `None` value is a tombstone: the row changed (or went away) at `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The cache epoch (see the cache crate): entries of an older epoch are never served.
    pub epoch: i64,
    /// The row version the value was read at.
    pub version: i64,
    /// The serialised value, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// Whether a conditional write landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The entry was stored.
    Stored,
    /// An entry at least as new was already there; nothing changed. `current` is that entry
    /// (a fill that loses learns the newer value without another round trip).
    Rejected {
        /// The entry that won.
        current: Option<CacheEntry>,
    },
}

/// What a lookup found: a hit, or a miss with the token a fill of this key must present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The stored entry, if any (on a miss: one of another epoch, a tombstone, or `None`).
    pub entry: Option<CacheEntry>,
    /// On a miss, the key's fill token. Every write-through of the key, every fill that
    /// lands and every removal of the key (eviction, `DEL`, `FLUSHALL`) ends it, so a fill
    /// presenting it lands only if nothing happened to the key since the miss: a slow reader
    /// can never bring back a value older than one that was written and then evicted.
    pub fill_token: Option<String>,
}

impl Lookup {
    /// The entry's value when this is a hit: a value (not a tombstone) of `epoch`.
    #[must_use]
    pub fn hit(&self, epoch: i64) -> Option<&[u8]> {
        match (&self.entry, &self.fill_token) {
            (
                Some(CacheEntry {
                    epoch: e,
                    value: Some(bytes),
                    ..
                }),
                None,
            ) if *e == epoch => Some(bytes),
            _ => None,
        }
    }
}

/// A cache operation failed or timed out. Never shown to a client: the caller falls back.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The store did not answer in time.
    #[error("cache timed out")]
    Timeout,
    /// The store is unreachable or the circuit breaker is open.
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// A key-value store for versioned entries. Every write carries a TTL: no key lives forever.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CacheStore: Send + Sync {
    /// Reads an entry.
    ///
    /// # Errors
    /// `Timeout` or `Unavailable` when the store cannot answer.
    async fn get(&self, key: &str) -> Result<Option<CacheEntry>, CacheError>;

    /// Reads an entry for a reader holding a lease of `epoch`. A hit is a value (not a
    /// tombstone) of that epoch; anything else (or `miss`, which makes even a hit a miss) is
    /// a miss, and then the key's fill token is handed out: the one already there, or
    /// `candidate`, stored with the key (living `token_ttl` when the key did not exist).
    ///
    /// # Errors
    /// `Timeout` or `Unavailable` when the store cannot answer.
    async fn lookup(
        &self,
        key: &str,
        epoch: i64,
        miss: bool,
        candidate: &str,
        token_ttl: Duration,
    ) -> Result<Lookup, CacheError>;

    /// Stores a value read from PostgreSQL after a miss, only if the key still holds the fill
    /// `token` handed out at that miss (nothing was written, filled or removed since), so
    /// that `N`, read after the miss, is at least as new as the stored entry `S`. With a valid
    /// token it stores when there is no `S`, or `N.version > S.version`, or `N.version ==
    /// S.version` and `S` is a tombstone or of an older epoch; the entry keeps
    /// `max(N.epoch, S.epoch)`. This is how a slow reader's old value can never land over a
    /// newer one, even when the newer one was evicted meanwhile. A rejected fill returns `S`.
    ///
    /// # Errors
    /// `Timeout` or `Unavailable` when the store cannot answer.
    async fn fill(
        &self,
        key: &str,
        entry: &CacheEntry,
        ttl: Duration,
        token: &str,
    ) -> Result<WriteOutcome, CacheError>;

    /// Writes through a committed change (a value or a tombstone) when there is no stored
    /// entry or `N.version > S.version`; the stored epoch becomes `max(N.epoch, S.epoch)`.
    /// A value lands as a value only over a stored value: with no entry, or over a
    /// tombstone, it lands as a tombstone of its version (the write may be a late one whose
    /// newer successor was evicted meanwhile; a tombstone is never served, and the next
    /// fill replaces it). A write that lands ends the key's fill token.
    ///
    /// # Errors
    /// `Timeout` or `Unavailable` when the store cannot answer.
    async fn write(
        &self,
        key: &str,
        entry: &CacheEntry,
        ttl: Duration,
    ) -> Result<WriteOutcome, CacheError>;

    /// Removes keys. Used for immutable entries that went away.
    ///
    /// # Errors
    /// `Timeout` or `Unavailable` when the store cannot answer.
    async fn delete(&self, keys: &[String]) -> Result<(), CacheError>;

    /// Counts (and, if `delete`, removes) every key of this service's namespace matching a
    /// `{module}:{entity}:*` style pattern; returns how many it found.
    ///
    /// # Errors
    /// `Timeout` or `Unavailable` when the store cannot answer.
    async fn scan(&self, pattern: &str, delete: bool) -> Result<u64, CacheError>;

    /// Checks that the store answers.
    ///
    /// # Errors
    /// `Timeout` or `Unavailable` when it does not.
    async fn ping(&self) -> Result<(), CacheError>;

    /// An identity of the server process that changes when it restarts (Redis's `run_id`),
    /// or `None` when the store cannot tell. A restarted server may have reloaded old entries
    /// from disk, so the cache starts a new epoch when it sees this change.
    ///
    /// # Errors
    /// `Timeout` or `Unavailable` when the store cannot answer.
    async fn server_id(&self) -> Result<Option<String>, CacheError> {
        Ok(None)
    }
}

/// Coordinates the cache epoch and the instances' read leases in PostgreSQL, so that a write
/// whose cache update failed can still guarantee that no instance serves the old entry.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CacheFence: Send + Sync {
    /// Renews this instance's lease to serve cached reads for `ttl` and returns its epoch;
    /// `None` (and no lease) when the epoch is marked stale, or another instance blocks
    /// leases: the caller then stops serving cached reads, starts a new epoch
    /// ([`CacheFence::bump_epoch`]) and renews again.
    /// Serialised with [`CacheFence::mark_stale`], so a lease is never granted under a stale
    /// epoch.
    ///
    /// # Errors
    /// `RepoError` when PostgreSQL cannot be reached: the instance must stop serving cache.
    async fn renew_lease(
        &self,
        instance: uuid::Uuid,
        ttl: Duration,
    ) -> Result<Option<i64>, crate::errors::RepoError>;

    /// Starts a new epoch if the current one is marked stale.
    ///
    /// # Errors
    /// `RepoError` when PostgreSQL cannot be reached.
    async fn bump_epoch(&self) -> Result<(), crate::errors::RepoError>;

    /// Gives up this instance's lease at once.
    ///
    /// # Errors
    /// `RepoError` when PostgreSQL cannot be reached (the lease then simply expires).
    async fn release_lease(&self, instance: uuid::Uuid) -> Result<(), crate::errors::RepoError>;

    /// Marks the current epoch stale (no lease is granted under it any more), gives up this
    /// instance's lease, and returns that epoch.
    ///
    /// # Errors
    /// `RepoError` when PostgreSQL cannot be reached.
    async fn mark_stale(&self, instance: uuid::Uuid) -> Result<i64, crate::errors::RepoError>;

    /// Says that this instance cannot keep Redis current (it cannot reach it): marks the
    /// epoch stale, ends this instance's lease, and grants no lease to anyone for `ttl`
    /// (called again to extend it). Serialised with renewals like
    /// [`CacheFence::mark_stale`]: leases granted before are seen by
    /// [`CacheFence::lease_wait`], none is granted after. Returns the epoch.
    ///
    /// # Errors
    /// `RepoError` when PostgreSQL cannot be reached.
    async fn block_leases(
        &self,
        instance: uuid::Uuid,
        ttl: Duration,
    ) -> Result<i64, crate::errors::RepoError>;

    /// Ends this instance's block at once (it reaches Redis again).
    ///
    /// # Errors
    /// `RepoError` when PostgreSQL cannot be reached (the block then simply expires).
    async fn unblock_leases(&self, instance: uuid::Uuid) -> Result<(), crate::errors::RepoError>;

    /// How long until every lease of another instance that is live now has ended, whatever
    /// its epoch (zero when none is). Read after [`CacheFence::mark_stale`] returned, in a
    /// statement of its own, it sees every lease granted before the mark.
    ///
    /// # Errors
    /// `RepoError` when PostgreSQL cannot be reached.
    async fn lease_wait(&self, instance: uuid::Uuid) -> Result<Duration, crate::errors::RepoError>;
}
