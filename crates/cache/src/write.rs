//! The write path: after PostgreSQL commits, each changed entry is written through (or
//! tombstoned) with the row's new version; if any of those fail, the fence is raised before
//! the write is acknowledged, and if the fence cannot be raised either, the write is not
//! acknowledged at all (the caller answers 503; a retry writes the current state through).

use std::time::{Duration, Instant};

use waiaas_domain::ports::CacheEntry;

use crate::engine::{Cache, L1_INVALIDATION_CHANNEL};
use crate::keys::Kind;
use crate::versioned::{IMMUTABLE_VERSION, Versioned};

/// One committed change to reflect in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    kind: Kind,
    id: String,
    version: i64,
    value: Option<Vec<u8>>,
}

impl Change {
    /// Writes the new value through.
    #[must_use]
    pub fn value<T: Versioned>(kind: Kind, id: impl ToString, value: &T) -> Self {
        Self {
            kind,
            id: id.to_string(),
            version: value.version(),
            value: serde_json::to_vec(value).ok(),
        }
    }

    /// Marks the entry changed at `version` without a value.
    #[must_use]
    pub fn tombstone(kind: Kind, id: impl ToString, version: i64) -> Self {
        Self {
            kind,
            id: id.to_string(),
            version,
            value: None,
        }
    }
}

/// A committed change could be neither written to Redis nor fenced (PostgreSQL, where the
/// fence lives, did not answer): other instances may still serve the entry it replaced, so
/// the write must not be acknowledged. Retrying the request writes the current state
/// through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the change was committed but could not be made visible safely: the cache could be neither updated nor fenced"
)]
pub struct Unfenced;

impl Cache {
    /// Reflects committed changes in Redis. Must be awaited before the write is acknowledged:
    /// when Redis did not take every change, it raises the fence (see `lease`), which can take
    /// up to one lease time.
    ///
    /// # Errors
    /// [`Unfenced`] when a change was not written and the fence could not be raised: the
    /// write must then not be acknowledged.
    pub async fn apply(&self, changes: Vec<Change>) -> Result<(), Unfenced> {
        if changes.is_empty() {
            return Ok(());
        }
        let epoch = self.lease.epoch_hint();
        let writes = changes.iter().map(|c| {
            let key = c.kind.key(&c.id);
            let ttl = self.cfg.ttls.for_kind(c.kind);
            let entry = CacheEntry {
                epoch,
                version: c.version,
                value: c.value.clone(),
            };
            async move { self.guard.write(&key, &entry, ttl).await }
        });
        let results = futures::future::join_all(writes).await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        metrics::counter!("waiaas_cache_writes_total", "outcome" => "ok")
            .increment((results.len() - failed) as u64);
        if failed > 0 {
            metrics::counter!("waiaas_cache_writes_total", "outcome" => "failed")
                .increment(failed as u64);
            crate::engine::CacheStats::add(&self.stats.write_failures, failed as u64);
            if self.breaker().state() != crate::breaker::BreakerState::Closed {
                self.tripped.notify_one();
            }
            self.fence("write failed").await?;
        }
        Ok(())
    }

    /// Removes an immutable entry everywhere: tombstones it in Redis and broadcasts the
    /// deletion to every instance's L1.
    ///
    /// # Errors
    /// [`Unfenced`], as [`Cache::apply`].
    pub async fn evict_immutable(&self, kind: Kind, id: &str) -> Result<(), Unfenced> {
        let key = kind.key(id);
        self.l1.invalidate(&key);
        self.apply(vec![Change::tombstone(kind, id, IMMUTABLE_VERSION + 1)])
            .await?;
        if let Err(e) = self
            .bus
            .publish(L1_INVALIDATION_CHANNEL, key.into_bytes())
            .await
        {
            tracing::warn!(error = %e, "L1 deletion not broadcast");
        }
        Ok(())
    }

    /// Makes every entry written before now unreachable before returning: gives up this
    /// instance's lease, marks the epoch stale (so the next lease renewal anywhere starts a
    /// new one), then reads, in a statement of its own, how long the longest live lease of
    /// another instance lasts (whatever its epoch) and waits that long. Calls that arrive
    /// while one runs share the next successful run, never one that started before they
    /// asked.
    ///
    /// # Errors
    /// [`Unfenced`] when the epoch could not be marked stale.
    pub(crate) async fn fence(&self, why: &'static str) -> Result<(), Unfenced> {
        let asked = Instant::now();
        let mut last = self.fence_lock.lock().await;
        if last.is_some_and(|started| started >= asked) {
            return Ok(());
        }
        let started = Instant::now();
        self.lease.revoke();
        let mut marked = None;
        for attempt in 1..=3 {
            match self.fence_port.mark_stale(self.cfg.instance).await {
                Ok(epoch) => {
                    marked = Some(epoch);
                    break;
                }
                Err(e) if attempt == 3 => {
                    tracing::error!(error = %e, reason = why, "Cache epoch not marked stale: the write is not acknowledged");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20 * attempt)).await,
            }
        }
        let Some(epoch) = marked else {
            metrics::counter!("waiaas_cache_fences_total", "reason" => "failed").increment(1);
            return Err(Unfenced);
        };
        self.lease.saw_epoch(epoch);
        // Every lease granted before the mark is visible now; none is granted after it. A
        // lease lasts at most one lease time from its grant, so without an answer that is
        // how long to wait.
        let wait = match self.fence_port.lease_wait(self.cfg.instance).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "Cache leases not read: waiting one lease time");
                self.cfg.lease
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        tracing::debug!(
            epoch,
            reason = why,
            waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "Cache epoch fenced"
        );
        metrics::counter!("waiaas_cache_fences_total", "reason" => why).increment(1);
        crate::engine::CacheStats::add(&self.stats.fences, 1);
        metrics::histogram!("waiaas_cache_fence_seconds").record(started.elapsed().as_secs_f64());
        *last = Some(started);
        Ok(())
    }
}
