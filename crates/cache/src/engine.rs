//! The cache engine: L1 (in process, immutable entries only) in front of L2 (Redis, every
//! kind), versioned entries, single-flight, the breaker, and the lease keeper.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tokio::sync::Notify;
use uuid::Uuid;
use waiaas_domain::ports::{CacheFence, CacheStore, EventBus};

use crate::flight::Flights;
use crate::guard::Guarded;
use crate::lease::Lease;
use crate::ttl::Ttls;

/// The event-bus channel on which L1 deletions are broadcast.
pub const L1_INVALIDATION_CHANNEL: &str = "cache:l1:invalidate";

/// How the cache behaves.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// TTLs per kind.
    pub ttls: Ttls,
    /// Entries the L1 tier holds.
    pub l1_capacity: u64,
    /// Consecutive failures that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before a probe.
    pub breaker_open: Duration,
    /// The longest one Redis call may take.
    pub call_timeout: Duration,
    /// The length of a lease to serve cached reads.
    pub lease: Duration,
    /// This instance's identity in the lease table.
    pub instance: Uuid,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttls: Ttls::default(),
            l1_capacity: 100_000,
            breaker_failures: 3,
            breaker_open: Duration::from_secs(1),
            call_timeout: Duration::from_millis(100),
            lease: Duration::from_secs(2),
            instance: Uuid::new_v4(),
        }
    }
}

/// Counters of one cache, for tests, the benchmark and the checker (the same events are
/// also recorded as metrics).
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Reads served from L1.
    pub l1_hits: AtomicU64,
    /// Reads served from L2.
    pub l2_hits: AtomicU64,
    /// PostgreSQL reads done for misses.
    pub loads: AtomicU64,
    /// Fills that landed.
    pub fills_stored: AtomicU64,
    /// Fills that lost to a newer entry.
    pub fills_rejected: AtomicU64,
    /// Write-throughs that failed.
    pub write_failures: AtomicU64,
    /// Fences raised by this instance (the epoch marked stale after a failed cache write).
    pub fences: AtomicU64,
}

impl CacheStats {
    /// A counter's value.
    #[must_use]
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The cache of one instance. Cheap to share behind an `Arc`; `start` runs its background
/// tasks (the lease keeper and the L1 invalidation listener).
pub struct Cache {
    pub(crate) cfg: CacheConfig,
    pub(crate) guard: Guarded,
    pub(crate) fence_port: Arc<dyn CacheFence>,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) lease: Lease,
    pub(crate) l1: moka::sync::Cache<String, Arc<dyn std::any::Any + Send + Sync>>,
    pub(crate) l1_generation: AtomicU64,
    pub(crate) flights: Flights,
    pub(crate) fence_lock: tokio::sync::Mutex<Option<Instant>>,
    pub(crate) tripped: Arc<Notify>,
    /// Whether this instance holds a block on every lease (it cannot reach Redis).
    pub(crate) blocked: std::sync::atomic::AtomicBool,
    /// Counters.
    pub stats: CacheStats,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("cfg", &self.cfg)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache over a store (Redis), the fence (PostgreSQL) and the event bus.
    #[must_use]
    pub fn new(
        store: Arc<dyn CacheStore>,
        fence: Arc<dyn CacheFence>,
        bus: Arc<dyn EventBus>,
        cfg: CacheConfig,
    ) -> Self {
        let guard = Guarded::new(
            store,
            cfg.breaker_failures,
            cfg.breaker_open,
            cfg.call_timeout,
        );
        let l1 = moka::sync::Cache::builder()
            .max_capacity(cfg.l1_capacity)
            .time_to_live(cfg.ttls.immutable)
            .build();
        Self {
            cfg,
            guard,
            fence_port: fence,
            bus,
            lease: Lease::default(),
            l1,
            l1_generation: AtomicU64::new(0),
            flights: Flights::default(),
            fence_lock: tokio::sync::Mutex::new(None),
            tripped: Arc::new(Notify::new()),
            blocked: std::sync::atomic::AtomicBool::new(false),
            stats: CacheStats::default(),
            tasks: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Starts the lease keeper and the L1 invalidation listener.
    pub fn start(self: &Arc<Self>) {
        let keeper = tokio::spawn(Self::keep_lease(Arc::downgrade(self)));
        let listener = tokio::spawn(Self::listen_for_l1_deletions(Arc::downgrade(self)));
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend([keeper, listener]);
    }

    /// Stops the background tasks and gives up the lease.
    pub async fn shutdown(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
        self.lease.revoke();
        if let Err(e) = self.fence_port.release_lease(self.cfg.instance).await {
            tracing::debug!(error = %e, "Cache lease not released");
        }
    }

    /// The epoch of this instance's live lease, if it holds one.
    #[must_use]
    pub fn lease_epoch(&self) -> Option<i64> {
        self.lease.current()
    }

    /// The breaker in front of Redis.
    #[must_use]
    pub const fn breaker(&self) -> &crate::breaker::Breaker {
        self.guard.breaker()
    }

    /// The raw store, for operator commands (`cache stats`, `cache flush`).
    #[must_use]
    pub fn store(&self) -> &Arc<dyn CacheStore> {
        self.guard.store()
    }

    /// Whether the L1 tier may be used now: only while the event bus that carries L1
    /// deletions is connected. A (re)connection empties L1, since deletions may have been
    /// missed while it was down.
    pub(crate) fn l1_usable(&self) -> bool {
        let status = self.bus.status();
        if !status.connected {
            metrics::counter!("waiaas_cache_l1_bypassed_total").increment(1);
            return false;
        }
        let seen = self.l1_generation.swap(status.generation, Ordering::AcqRel);
        if seen != status.generation {
            self.l1.invalidate_all();
            if seen != 0 {
                tracing::info!(
                    generation = status.generation,
                    "Event bus reconnected: L1 cleared"
                );
            }
        }
        true
    }

    async fn keep_lease(me: std::sync::Weak<Self>) {
        let mut last_trips = 0_u64;
        let mut last_server: Option<String> = None;
        let mut recover = false;
        loop {
            let Some(cache) = me.upgrade() else { return };
            let tick = cache.cfg.lease / 4;
            let healthy = if cache.breaker().state() == crate::breaker::BreakerState::Closed {
                true
            } else {
                cache.guard.ping().await.is_ok()
            };
            let trips = cache.breaker().trips();
            if trips != last_trips {
                last_trips = trips;
                recover = true;
            }
            if healthy && let Ok(Some(id)) = cache.guard.server_id().await {
                if last_server.as_ref().is_some_and(|old| *old != id) {
                    tracing::warn!("Redis restarted: starting a new cache epoch");
                    recover = true;
                }
                last_server = Some(id);
            }
            if !healthy {
                if cache.lease.revoke() {
                    tracing::warn!(
                        "Redis unavailable: cached reads suspended everywhere, serving from PostgreSQL"
                    );
                }
                // This instance cannot keep Redis current: while it cannot, no instance
                // may serve from Redis (its writes would leave their entries behind).
                cache.block().await;
            } else {
                if cache
                    .blocked
                    .swap(false, std::sync::atomic::Ordering::SeqCst)
                {
                    if let Err(e) = cache.fence_port.unblock_leases(cache.cfg.instance).await {
                        tracing::debug!(error = %e, "Cache leases not unblocked: the block expires");
                    }
                    recover = true;
                }
                // Whatever Redis holds now may predate writes it missed: a new epoch. Tried
                // again at the next tick if PostgreSQL does not answer.
                if recover && cache.fence("recovery").await.is_ok() {
                    recover = false;
                }
                if !recover {
                    cache.renew().await;
                }
            }
            let tripped = cache.tripped.clone();
            drop(cache);
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                () = tripped.notified() => {}
            }
        }
    }

    /// Blocks every instance's lease while this one cannot reach Redis. The first time, it
    /// waits (holding the fence, so this instance's reads wait too) until every lease granted
    /// before has ended: from then on no instance serves from Redis, and no read anywhere can
    /// be older than one here. Later calls extend the block.
    async fn block(&self) {
        let ttl = self.cfg.lease * 3;
        if self.blocked.load(std::sync::atomic::Ordering::SeqCst) {
            if let Err(e) = self.fence_port.block_leases(self.cfg.instance, ttl).await {
                tracing::debug!(error = %e, "Cache leases not blocked");
                self.blocked
                    .store(false, std::sync::atomic::Ordering::SeqCst);
            }
            return;
        }
        let _fence = self.fence_lock.lock().await;
        if self.blocked.load(std::sync::atomic::Ordering::SeqCst) {
            // Another caller blocked while this one waited for the fence.
            return;
        }
        match self.fence_port.block_leases(self.cfg.instance, ttl).await {
            Ok(epoch) => {
                self.lease.saw_epoch(epoch);
                let wait = match self.fence_port.lease_wait(self.cfg.instance).await {
                    Ok(w) => w,
                    Err(_) => self.cfg.lease,
                };
                tokio::time::sleep(wait).await;
                self.blocked
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                tracing::warn!(
                    epoch,
                    "Cache leases blocked: this instance cannot reach Redis"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cache leases not blocked");
            }
        }
    }

    /// Called by a read that returns a value from PostgreSQL it could not fill into Redis
    /// (its lookup got no answer): another instance may still serve an older entry of that
    /// key from Redis (a write whose write-through has not landed yet), and this read must
    /// not return something newer than what a later read elsewhere could return. So, before
    /// it returns, this instance gives up its lease and blocks every lease, waiting until the
    /// ones granted before have ended (once: later reads find the block in place). The lease
    /// keeper lifts the block, and starts a new epoch, when Redis answers again.
    pub(crate) async fn hold_back_unfilled(&self) {
        if self.blocked.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        self.lease.revoke();
        self.block().await;
    }

    /// Renews the lease; when the epoch was marked stale, stops serving cached reads before
    /// it starts a new epoch (another instance's fence may be waiting on this instance's
    /// lease, and the new epoch ends that wait), then leases the new one.
    async fn renew(&self) {
        for _ in 0..3 {
            let asked = self.lease.generation();
            let sent = Instant::now();
            match self
                .fence_port
                .renew_lease(self.cfg.instance, self.cfg.lease)
                .await
            {
                Ok(Some(epoch)) => {
                    self.lease.granted(epoch, sent, self.cfg.lease, asked);
                    return;
                }
                Ok(None) => {
                    self.lease.revoke();
                    if let Err(e) = self.fence_port.bump_epoch().await {
                        tracing::warn!(error = %e, "Cache epoch not bumped");
                        return;
                    }
                }
                Err(e) => {
                    self.lease.revoke();
                    tracing::warn!(error = %e, "Cache lease not renewed");
                    return;
                }
            }
        }
        tracing::debug!(
            "No cache lease this round: the epoch is stale or an instance blocks leases"
        );
    }

    async fn listen_for_l1_deletions(me: std::sync::Weak<Self>) {
        loop {
            let Some(cache) = me.upgrade() else { return };
            let stream = cache.bus.subscribe(L1_INVALIDATION_CHANNEL).await;
            drop(cache);
            match stream {
                Ok(mut stream) => {
                    while let Some(key) = stream.next().await {
                        let Some(cache) = me.upgrade() else { return };
                        if let Ok(key) = String::from_utf8(key) {
                            cache.l1.invalidate(&key);
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "L1 invalidation channel not subscribed"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
