//! The read path: L2 hit, or one shared PostgreSQL read and a set-if-newer fill that
//! presents the fill token handed out at the miss.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use waiaas_domain::RepoError;
use waiaas_domain::ports::{CacheEntry, Lookup, WriteOutcome};

use crate::engine::{Cache, CacheStats};
use crate::flight::{Loaded, Outcome, Role};
use crate::keys::Kind;
use crate::versioned::Versioned;

/// A follower's copy of the error its flight's leader met: the message, and the
/// infrastructure fault it carried, if any (so a follower answers 503 as the leader does).
fn shared_error(e: &anyhow::Error) -> anyhow::Error {
    let copy = anyhow::anyhow!("{e:#}");
    match waiaas_domain::Fault::of(e) {
        Some(fault) => copy.context(fault),
        None => copy,
    }
}

/// How long a fill token lives on a key that had no entry: a reader whose PostgreSQL read
/// takes longer simply does not fill.
const FILL_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(10);

fn hit(tier: &'static str, kind: Kind) {
    metrics::counter!("waiaas_cache_requests_total", "tier" => tier, "kind" => kind.name(), "result" => "hit").increment(1);
}

fn miss(tier: &'static str, kind: Kind) {
    metrics::counter!("waiaas_cache_requests_total", "tier" => tier, "kind" => kind.name(), "result" => "miss").increment(1);
}

fn decode<T: Versioned>(kind: Kind, bytes: &[u8]) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            // An entry written by another version of the service: a miss, not an error.
            metrics::counter!("waiaas_cache_errors_total", "op" => "decode", "reason" => kind.name()).increment(1);
            tracing::debug!(kind = kind.name(), error = %e, "Cache entry not decoded");
            None
        }
    }
}

impl Cache {
    /// Reads a versioned entry: from Redis when this instance holds a lease and the entry is
    /// of that lease's epoch, else from PostgreSQL through `load` (shared by concurrent
    /// misses) followed by a set-if-newer fill. Redis failures are never returned.
    ///
    /// # Errors
    /// Only `load`'s errors.
    pub async fn read<T, F, Fut>(
        &self,
        kind: Kind,
        id: &str,
        load: F,
    ) -> Result<Option<T>, RepoError>
    where
        T: Versioned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, RepoError>>,
    {
        self.read_accepting(kind, id, |_: &T| true, load).await
    }

    /// As [`Cache::read`], where a cached value that `accept` refuses (yesterday's summary,
    /// say) is a miss: read from PostgreSQL and filled over.
    ///
    /// # Errors
    /// Only `load`'s errors.
    pub async fn read_accepting<T, A, F, Fut>(
        &self,
        kind: Kind,
        id: &str,
        accept: A,
        load: F,
    ) -> Result<Option<T>, RepoError>
    where
        T: Versioned,
        A: Fn(&T) -> bool,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, RepoError>>,
    {
        let key = kind.key(id);
        let arrival = Instant::now();
        let mut token = None;
        let lease = self.lease.current();
        if lease.is_none() {
            // Never served from Redis without a lease; still filled, so that no instance can
            // serve anything older than what this read returns.
            token = self
                .lookup(&key, self.lease.epoch_hint(), true)
                .await
                .and_then(|l| l.fill_token);
        }
        if let Some(epoch) = lease
            && let Some(l) = self.lookup(&key, epoch, false).await
        {
            match l.hit(epoch).and_then(|bytes| decode::<T>(kind, bytes)) {
                Some(v) if accept(&v) => {
                    hit("l2", kind);
                    CacheStats::add(&self.stats.l2_hits, 1);
                    return Ok(Some(v));
                }
                Some(_) => {
                    token = self
                        .lookup(&key, epoch, true)
                        .await
                        .and_then(|l| l.fill_token);
                }
                None => token = l.fill_token,
            }
        }
        miss("l2", kind);
        let mut load = Some(load);
        loop {
            match self.flights.join_or_lead(&key) {
                Role::Leader(guard) => {
                    // Both taken before the read: a fill is stamped with the epoch known
                    // before the value was read.
                    let epoch = self.lease.current();
                    let stamp = epoch.unwrap_or_else(|| self.lease.epoch_hint());
                    let loader = load
                        .take()
                        .ok_or_else(|| RepoError(anyhow::anyhow!("single-flight led twice")))?;
                    let loaded = loader().await;
                    if epoch.is_none() {
                        // Without a lease this read may see a write whose cache update is
                        // still being fenced: wait for that fence, so that no instance can
                        // serve anything older once this read has returned.
                        drop(self.fence_lock.lock().await);
                    }
                    metrics::counter!("waiaas_cache_loads_total", "kind" => kind.name())
                        .increment(1);
                    guard.close();
                    let loaded = match loaded {
                        Ok(v) => v,
                        Err(e) => {
                            let shared = Arc::new(shared_error(&e.0));
                            guard.finish(Outcome {
                                value: Err(shared),
                                confirmed: false,
                                epoch,
                            });
                            return Err(e);
                        }
                    };
                    let loaded_some = loaded.is_some();
                    let (outcome, value, reached) = self
                        .fill(kind, &key, (epoch, stamp), token.as_deref(), loaded)
                        .await;
                    if loaded_some && !reached {
                        // Redis did not answer the lookup, so nothing here can make it hold
                        // this version: hold back until no instance serves from it.
                        self.hold_back_unfilled().await;
                    }
                    guard.finish(outcome);
                    return Ok(value);
                }
                Role::Follower(slot) => {
                    let Some(outcome) = slot.wait().await else {
                        continue;
                    };
                    let current = outcome.confirmed
                        && outcome.epoch.is_some()
                        && self.lease.current() == outcome.epoch;
                    if arrival <= slot.started || current {
                        metrics::counter!("waiaas_cache_shared_loads_total", "kind" => kind.name())
                            .increment(1);
                        return match outcome.value {
                            Ok(Some(l)) => Ok(decode::<T>(kind, &l.bytes).filter(|v| accept(v))),
                            Ok(None) => Ok(None),
                            Err(e) => Err(RepoError(shared_error(&e))),
                        };
                    }
                    metrics::counter!("waiaas_cache_flight_retries_total", "kind" => kind.name())
                        .increment(1);
                }
            }
        }
    }

    /// One lookup in Redis; `None` when Redis did not answer.
    async fn lookup(&self, key: &str, epoch: i64, miss: bool) -> Option<Lookup> {
        let candidate = uuid::Uuid::new_v4().simple().to_string();
        self.guard
            .lookup(key, epoch, miss, &candidate, FILL_TOKEN_TTL)
            .await
            .ok()
    }

    /// Fills Redis with a value just read from PostgreSQL (stamped with `stamp`, the lease's
    /// epoch or, without a lease, the newest epoch seen) and says whether the value is proven
    /// current (only under a lease); a fill that loses to a newer entry of the lease's epoch
    /// returns that entry. The third value says whether Redis answered the fill (false
    /// without a token from the miss, or when the fill failed).
    async fn fill<T: Versioned>(
        &self,
        kind: Kind,
        key: &str,
        (epoch, stamp): (Option<i64>, i64),
        token: Option<&str>,
        loaded: Option<T>,
    ) -> (Outcome, Option<T>, bool) {
        let unconfirmed = |value: Option<Loaded>| Outcome {
            value: Ok(value),
            confirmed: false,
            epoch,
        };
        let Some(v) = loaded else {
            return (unconfirmed(None), None, true);
        };
        let Ok(bytes) = serde_json::to_vec(&v) else {
            return (unconfirmed(None), Some(v), true);
        };
        let l = Loaded {
            bytes: Arc::new(bytes),
            version: v.version(),
        };
        // Without a token from the miss, nothing is filled.
        let Some(token) = token else {
            return (unconfirmed(Some(l)), Some(v), false);
        };
        let mut ttl = self.cfg.ttls.for_kind(kind);
        if let Some(cap) = v.ttl_cap() {
            if cap.is_zero() {
                return (unconfirmed(Some(l)), Some(v), true);
            }
            ttl = ttl.min(cap);
        }
        let entry = CacheEntry {
            epoch: stamp,
            version: l.version,
            value: Some(l.bytes.to_vec()),
        };
        let filled = self.guard.fill(key, &entry, ttl, token).await;
        let mut reached = filled.is_ok();
        // Readers of one miss share its token: when another reader's fill of an older version
        // landed first, this fill is refused and Redis holds that older version while this
        // read returns a newer one, which a later read elsewhere must not go back from. A
        // tombstone of this version (set-if-newer, as a write-through) ends the older entry.
        if let Ok(WriteOutcome::Rejected {
            current: Some(older),
        }) = &filled
            && older.version < l.version
        {
            let tombstone = CacheEntry {
                epoch: stamp,
                version: l.version,
                value: None,
            };
            reached = self.guard.write(key, &tombstone, ttl).await.is_ok();
        }
        let Some(epoch) = epoch else {
            // Filled (or not) for others; without a lease nothing here is proven.
            return (unconfirmed(Some(l)), Some(v), reached);
        };
        let confirmed = |value: Loaded| Outcome {
            value: Ok(Some(value)),
            confirmed: true,
            epoch: Some(epoch),
        };
        match filled {
            Ok(WriteOutcome::Stored) => {
                metrics::counter!("waiaas_cache_fills_total", "kind" => kind.name(), "outcome" => "stored").increment(1);
                CacheStats::add(&self.stats.fills_stored, 1);
                (confirmed(l), Some(v), true)
            }
            Ok(WriteOutcome::Rejected { current }) => {
                metrics::counter!("waiaas_cache_fills_total", "kind" => kind.name(), "outcome" => "rejected").increment(1);
                CacheStats::add(&self.stats.fills_rejected, 1);
                match current {
                    Some(CacheEntry {
                        epoch: e,
                        version,
                        value: Some(bytes),
                    }) if e == epoch && version >= l.version => match decode::<T>(kind, &bytes) {
                        Some(newer) => (
                            confirmed(Loaded {
                                bytes: Arc::new(bytes),
                                version,
                            }),
                            Some(newer),
                            true,
                        ),
                        None => (unconfirmed(Some(l)), Some(v), true),
                    },
                    _ => (unconfirmed(Some(l)), Some(v), true),
                }
            }
            Err(_) => (unconfirmed(Some(l)), Some(v), false),
        }
    }

    /// Reads an immutable entry (ownership, asset): from L1 while the event bus is up, else
    /// as [`Cache::read`], keeping what it finds in L1.
    ///
    /// # Errors
    /// Only `load`'s errors.
    pub async fn read_immutable<T, F, Fut>(
        &self,
        kind: Kind,
        id: &str,
        load: F,
    ) -> Result<Option<T>, RepoError>
    where
        T: Versioned + Clone,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, RepoError>>,
    {
        let key = kind.key(id);
        let usable = self.l1_usable();
        if usable {
            // L1 keeps decoded values: a hit is a hash lookup and a clone, no parsing.
            if let Some(v) = self
                .l1
                .get(&key)
                .and_then(|any| any.downcast_ref::<T>().cloned())
            {
                hit("l1", kind);
                CacheStats::add(&self.stats.l1_hits, 1);
                return Ok(Some(v));
            }
            miss("l1", kind);
        }
        let value = self.read(kind, id, load).await?;
        if let Some(v) = &value
            && usable
            && self.l1_usable()
        {
            self.l1.insert(key, Arc::new(v.clone()));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use waiaas_domain::Fault;

    #[test]
    fn a_followers_copy_of_a_failed_read_keeps_its_fault() {
        let failed = anyhow::anyhow!("connection refused")
            .context(Fault::DatabaseUnavailable)
            .context("reading a balance");
        let copy = super::shared_error(&failed);
        assert_eq!(Fault::of(&copy), Some(Fault::DatabaseUnavailable));
        assert!(format!("{copy:#}").contains("connection refused"));
        let bug = super::shared_error(&anyhow::anyhow!("a bug"));
        assert_eq!(Fault::of(&bug), None);
    }
}
