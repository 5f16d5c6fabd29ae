//! Unit tests of the cache engine over mocked ports: single-flight, the breaker in front of
//! the store, L1 bypass while the event bus is down, and the fence after a failed write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use waiaas_domain::ports::{
    BusStatus, CacheError, Lookup, MockCacheFence, MockCacheStore, MockEventBus, WriteOutcome,
};
use waiaas_domain::{AgentId, AssetCode, Money, OwnerId, WalletBalance, WalletId, WalletOwnership};

use crate::{Cache, CacheConfig, Change, Kind};

fn store_that_misses() -> MockCacheStore {
    let mut s = MockCacheStore::new();
    s.expect_lookup().returning(|_, _, _, _, _| {
        Ok(Lookup {
            entry: None,
            fill_token: Some("token".into()),
        })
    });
    s.expect_fill()
        .returning(|_, _, _, _| Ok(WriteOutcome::Stored));
    s.expect_write()
        .returning(|_, _, _| Ok(WriteOutcome::Stored));
    s.expect_ping().returning(|| Ok(()));
    s.expect_server_id().returning(|| Ok(None));
    s
}

fn fence(lease_granted: bool) -> MockCacheFence {
    let mut f = MockCacheFence::new();
    f.expect_renew_lease().returning(move |_, _| {
        if lease_granted {
            Ok(Some(1))
        } else {
            Err(waiaas_domain::RepoError(anyhow::anyhow!("no lease")))
        }
    });
    f.expect_release_lease().returning(|_| Ok(()));
    f.expect_mark_stale().returning(|_| Ok(2));
    f.expect_lease_wait().returning(|_| Ok(Duration::ZERO));
    f.expect_bump_epoch().returning(|| Ok(()));
    f
}

fn bus(connected: bool) -> MockEventBus {
    let mut b = MockEventBus::new();
    b.expect_status().returning(move || BusStatus {
        connected,
        generation: 1,
    });
    b.expect_subscribe()
        .returning(|_| Ok(futures::stream::pending().boxed()));
    b.expect_publish().returning(|_, _| Ok(()));
    b
}

fn cache(store: MockCacheStore, fence: MockCacheFence, bus: MockEventBus) -> Arc<Cache> {
    let cfg = CacheConfig {
        lease: Duration::from_secs(2),
        ..CacheConfig::default()
    };
    Arc::new(Cache::new(
        Arc::new(store),
        Arc::new(fence),
        Arc::new(bus),
        cfg,
    ))
}

/// Polls `done` until it holds, for at most five seconds.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn with_lease(cache: &Arc<Cache>) {
    cache.start();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while cache.lease_epoch().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no lease was granted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn balance(id: WalletId) -> WalletBalance {
    WalletBalance {
        wallet_id: id,
        asset: AssetCode::parse("USD").unwrap(),
        balance: Money::new(5).unwrap(),
        held: Money::ZERO,
        version: 3,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_on_one_key_make_one_postgres_read() {
    let cache = cache(store_that_misses(), fence(true), bus(true));
    with_lease(&cache).await;
    let id = WalletId::new();
    let loads = Arc::new(AtomicUsize::new(0));
    let reads = (0..50).map(|_| {
        let (cache, loads) = (cache.clone(), loads.clone());
        tokio::spawn(async move {
            cache
                .read(Kind::Balance, &id.to_string(), || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(Some(balance(id)))
                })
                .await
        })
    });
    for r in futures::future::join_all(reads).await {
        assert_eq!(r.unwrap().unwrap(), Some(balance(id)));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.flights.open(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_lease_a_caller_that_arrives_after_the_read_began_reads_again() {
    let cache = cache(store_that_misses(), fence(false), bus(true));
    let id = WalletId::new();
    let loads = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Notify::new());
    let first = {
        let (cache, loads, gate) = (cache.clone(), loads.clone(), gate.clone());
        tokio::spawn(async move {
            cache
                .read(Kind::Balance, &id.to_string(), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    gate.notified().await;
                    Ok(Some(balance(id)))
                })
                .await
        })
    };
    let key = Kind::Balance.key(id);
    wait_until("the first read began", || loads.load(Ordering::SeqCst) == 1).await;
    let second = {
        let (cache, loads) = (cache.clone(), loads.clone());
        tokio::spawn(async move {
            cache
                .read(Kind::Balance, &id.to_string(), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok(Some(balance(id)))
                })
                .await
        })
    };
    // The second caller has joined the first one's flight, which began before it arrived.
    wait_until("the second caller joined the flight", || {
        cache.flights.followers(&key) == 1
    })
    .await;
    gate.notify_one();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    assert_eq!(
        loads.load(Ordering::SeqCst),
        2,
        "the late caller must not share a read that may predate a write"
    );
}

#[tokio::test]
async fn an_open_breaker_stops_calling_the_store_and_reads_still_work() {
    let mut store = MockCacheStore::new();
    // Reads 1 to 3: the lookup fails (no token, so no fill); the third failure opens the
    // breaker, and nothing reaches the store after that.
    store
        .expect_lookup()
        .times(3)
        .returning(|_, _, _, _, _| Err(CacheError::Timeout));
    store.expect_fill().never();
    store.expect_server_id().returning(|| Ok(None));
    store.expect_ping().returning(|| Err(CacheError::Timeout));
    // A read that returns what it could not fill gives up the lease and blocks every lease
    // before it returns (another instance may still serve an older entry from Redis); once.
    let blocks = Arc::new(AtomicUsize::new(0));
    let mut fence = fence(true);
    let b = blocks.clone();
    fence.expect_block_leases().returning(move |_, _| {
        b.fetch_add(1, Ordering::SeqCst);
        Ok(1)
    });
    let cache = cache(store, fence, bus(true));
    // A lease is needed for L2 reads to be tried at all.
    grant(&cache, 1);
    let id = WalletId::new();
    for i in 0..10 {
        let v = cache
            .read(Kind::Balance, &id.to_string(), || async {
                Ok(Some(balance(id)))
            })
            .await
            .unwrap();
        assert_eq!(v, Some(balance(id)), "reads fall through to PostgreSQL");
        assert_eq!(
            blocks.load(Ordering::SeqCst),
            1,
            "read {i}: leases blocked once, before the first read returned"
        );
        assert_eq!(cache.lease_epoch(), None, "the lease was given up");
    }
    assert_eq!(cache.breaker().state(), crate::breaker::BreakerState::Open);
}

#[tokio::test]
async fn l1_is_bypassed_while_the_event_bus_is_down() {
    let owner = OwnerId::new();
    let ownership = |id| WalletOwnership {
        wallet_id: id,
        agent_id: AgentId::new(),
        owner_id: owner,
        asset: AssetCode::parse("USD").unwrap(),
    };
    for (connected, expected_loads) in [(true, 1), (false, 3)] {
        let cache = cache(store_that_misses(), fence(false), bus(connected));
        let id = WalletId::new();
        let loads = AtomicUsize::new(0);
        for _ in 0..3 {
            cache
                .read_immutable(Kind::Ownership, &id.to_string(), || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok(Some(ownership(id)))
                })
                .await
                .unwrap();
        }
        assert_eq!(
            loads.load(Ordering::SeqCst),
            expected_loads,
            "bus connected: {connected}"
        );
    }
}

fn grant(cache: &Cache, epoch: i64) {
    let generation = cache.lease.generation();
    cache.lease.granted(
        epoch,
        std::time::Instant::now(),
        Duration::from_secs(60),
        generation,
    );
}

fn store_whose_writes_fail() -> MockCacheStore {
    let mut store = store_that_misses();
    store.checkpoint();
    store
        .expect_write()
        .returning(|_, _, _| Err(CacheError::Unavailable("down".into())));
    store.expect_server_id().returning(|| Ok(None));
    store
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_through_raises_the_fence_and_waits_for_the_leases_read_after_the_mark() {
    let mut fence = MockCacheFence::new();
    let mut seq = mockall::Sequence::new();
    fence
        .expect_mark_stale()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(9));
    // Another instance's lease, granted before the mark, lasts 300 ms more: it is read in a
    // statement of its own, after the mark, and waited for.
    fence
        .expect_lease_wait()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(Duration::from_millis(300)));
    let cache = cache(store_whose_writes_fail(), fence, bus(true));
    grant(&cache, 8);
    let id = WalletId::new();
    let started = tokio::time::Instant::now();
    cache
        .apply(vec![Change::value(Kind::Balance, id, &balance(id))])
        .await
        .expect("fenced");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "acknowledged before the other lease ended: {:?}",
        started.elapsed()
    );
    assert_eq!(
        cache.lease_epoch(),
        None,
        "this instance stopped serving the old epoch"
    );
    assert_eq!(cache.lease.epoch_hint(), 9);
}

#[tokio::test(start_paused = true)]
async fn a_write_whose_fence_cannot_be_raised_is_not_acknowledged() {
    let mut fence = MockCacheFence::new();
    fence.expect_mark_stale().times(3).returning(|_| {
        Err(waiaas_domain::RepoError(anyhow::anyhow!(
            "PostgreSQL is gone"
        )))
    });
    fence.expect_lease_wait().never();
    let cache = cache(store_whose_writes_fail(), fence, bus(true));
    grant(&cache, 8);
    let id = WalletId::new();
    let outcome = cache
        .apply(vec![Change::value(Kind::Balance, id, &balance(id))])
        .await;
    assert_eq!(outcome, Err(crate::Unfenced));
    assert_eq!(cache.lease_epoch(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_epoch_stops_being_served_before_a_new_one_is_started() {
    let served_at_bump: Arc<std::sync::Mutex<Option<Option<i64>>>> = Arc::default();
    let me: Arc<std::sync::OnceLock<std::sync::Weak<Cache>>> = Arc::default();
    let mut fence = MockCacheFence::new();
    let renewals = Arc::new(AtomicUsize::new(0));
    let r = renewals.clone();
    // The first renewal finds the epoch marked stale; after the bump, epoch 2 is leased.
    fence
        .expect_renew_lease()
        .returning(move |_, _| Ok((r.fetch_add(1, Ordering::SeqCst) > 0).then_some(2)));
    let (seen, who) = (served_at_bump.clone(), me.clone());
    fence.expect_bump_epoch().times(1).returning(move || {
        let cache = who.get().and_then(std::sync::Weak::upgrade).unwrap();
        *seen.lock().unwrap() = Some(cache.lease_epoch());
        Ok(())
    });
    fence.expect_release_lease().returning(|_| Ok(()));
    let cache = cache(store_that_misses(), fence, bus(true));
    me.set(Arc::downgrade(&cache)).unwrap();
    grant(&cache, 1);
    cache.start();
    wait_until("the new epoch was leased", || {
        cache.lease_epoch() == Some(2)
    })
    .await;
    assert_eq!(
        *served_at_bump.lock().unwrap(),
        Some(None),
        "the instance still served the stale epoch when it started a new one"
    );
    cache.shutdown().await;
}

/// A posting repository whose posting waits until released: the commit "is under way".
struct SlowPostings {
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
    outcome: waiaas_domain::ports::PostingOutcome,
}

#[async_trait::async_trait]
impl waiaas_domain::ports::TransactionRepository for SlowPostings {
    async fn post_deposit(
        &self,
        _: &waiaas_domain::ports::DepositCommand,
    ) -> Result<waiaas_domain::ports::PostingOutcome, waiaas_domain::PostingError> {
        unreachable!("only transfers are posted here")
    }

    async fn post_spend(
        &self,
        _: &waiaas_domain::ports::SpendCommand,
    ) -> Result<waiaas_domain::ports::PostingOutcome, waiaas_domain::PostingError> {
        self.entered.notify_one();
        self.release.notified().await;
        Ok(self.outcome.clone())
    }

    async fn post_sweep(
        &self,
        _: &waiaas_domain::ports::SweepCommand,
    ) -> Result<waiaas_domain::ports::PostingOutcome, waiaas_domain::PostingError> {
        unreachable!("only transfers are posted here")
    }

    async fn decide(
        &self,
        _: &waiaas_domain::ports::DecideCommand,
    ) -> Result<waiaas_domain::ports::PostingOutcome, waiaas_domain::ApprovalError> {
        unreachable!("only transfers are posted here")
    }

    async fn post_hold(
        &self,
        _: &waiaas_domain::ports::HoldCommand,
    ) -> Result<waiaas_domain::ports::PostingOutcome, waiaas_domain::PostingError> {
        unreachable!("only transfers are posted here")
    }

    async fn capture_hold(
        &self,
        _: &waiaas_domain::ports::CaptureCommand,
    ) -> Result<waiaas_domain::ports::PostingOutcome, waiaas_domain::PostingError> {
        unreachable!("only transfers are posted here")
    }

    async fn void_hold(
        &self,
        _: &waiaas_domain::ports::VoidCommand,
    ) -> Result<waiaas_domain::ports::PostingOutcome, waiaas_domain::PostingError> {
        unreachable!("only transfers are posted here")
    }

    async fn expire_holds(
        &self,
        _: chrono::DateTime<chrono::Utc>,
        _: u32,
    ) -> waiaas_domain::ports::Ended {
        // One release committed, then the next wallet stayed locked.
        waiaas_domain::ports::Ended {
            outcomes: vec![self.outcome.clone()],
            failed: Some(waiaas_domain::RepoError(
                anyhow::anyhow!("locked").context(waiaas_domain::Fault::WalletBusy),
            )),
        }
    }

    async fn expire_approvals(
        &self,
        _: chrono::DateTime<chrono::Utc>,
        _: u32,
    ) -> waiaas_domain::ports::Ended {
        unreachable!("only transfers and hold expiries are posted here")
    }

    async fn get(
        &self,
        _: waiaas_domain::TransactionId,
    ) -> Result<Option<waiaas_domain::Transaction>, waiaas_domain::RepoError> {
        unreachable!("only transfers are posted here")
    }

    async fn list_for_wallet(
        &self,
        _: WalletId,
        _: &waiaas_domain::TxFilter,
        _: &waiaas_domain::PageRequest<waiaas_domain::TxCursor>,
    ) -> Result<waiaas_domain::TransactionPage, waiaas_domain::RepoError> {
        unreachable!("only transfers are posted here")
    }

    async fn list_for_owner(
        &self,
        _: waiaas_domain::OwnerId,
        _: &waiaas_domain::TxFilter,
        _: &waiaas_domain::PageRequest<waiaas_domain::TxCursor>,
    ) -> Result<waiaas_domain::TransactionPage, waiaas_domain::RepoError> {
        unreachable!("only transfers are posted here")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posting_whose_caller_goes_away_during_the_commit_still_writes_its_balances_through() {
    use waiaas_domain::ports::{PostingOutcome, SpendCommand, TransactionRepository as _};
    use waiaas_domain::{AuditContext, Counterparty, Transaction, TransactionId};

    let writes = Arc::new(AtomicUsize::new(0));
    let mut store = store_that_misses();
    store.checkpoint();
    let w = writes.clone();
    store.expect_write().returning(move |key, _, _| {
        if key.starts_with("wallet:balance:") {
            w.fetch_add(1, Ordering::SeqCst);
        }
        Ok(WriteOutcome::Stored)
    });
    store.expect_server_id().returning(|| Ok(None));
    let cache = cache(store, fence(true), bus(true));
    let (from, to) = (WalletId::new(), WalletId::new());
    let cmd = SpendCommand {
        transaction_id: TransactionId::new(),
        from_wallet_id: from,
        to: Counterparty::Wallet(to),
        amount: Money::new(5).unwrap(),
        agent_id: AgentId::new(),
        owner_id: OwnerId::new(),
        memo: None,
        metadata: serde_json::json!({}),
        idempotency: None,
        mandate_id: None,
        now: chrono::Utc::now(),
        audit: AuditContext::system(),
    };
    let transaction: Transaction = serde_json::from_value(serde_json::json!({
        "id": cmd.transaction_id, "kind": "transfer", "status": "completed", "asset": "USD",
        "amount": 5, "from_wallet_id": from, "to_wallet_id": to, "destination": null,
        "memo": null, "metadata": {}, "initiated_by": {"type": "agent", "id": cmd.agent_id},
        "idempotency_key": null, "rule": null, "reason": null,
        "budget": {"daily_remaining": null, "hourly_remaining": null},
        "created_at": cmd.now, "updated_at": cmd.now,
    }))
    .unwrap();
    let inner = Arc::new(SlowPostings {
        entered: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
        outcome: PostingOutcome {
            transaction,
            replayed: false,
            balances: vec![balance(from), balance(to)],
            notified: None,
        },
    });
    let cached = crate::cached::CachedTransactions::new(inner.clone(), cache.clone());
    let request = tokio::spawn(async move { cached.post_spend(&cmd).await });
    inner.entered.notified().await;
    // The client disconnects while the commit is under way: its request future is dropped.
    request.abort();
    assert!(request.await.unwrap_err().is_cancelled());
    inner.release.notify_one();
    wait_until("both balances were written through", || {
        writes.load(Ordering::SeqCst) == 2
    })
    .await;
}

/// An expiry sweep that committed one release and then met a locked wallet still writes
/// the committed release through: a sweep's failure must not leave a committed change with
/// an older cache entry that instances keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_that_stopped_early_writes_through_what_it_committed() {
    use waiaas_domain::ports::{PostingOutcome, TransactionRepository as _};

    let writes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut store = store_that_misses();
    store.checkpoint();
    let w = writes.clone();
    store.expect_write().returning(move |key, _, _| {
        w.lock().unwrap().push(key.to_owned());
        Ok(WriteOutcome::Stored)
    });
    store.expect_server_id().returning(|| Ok(None));
    let cache = cache(store, fence(true), bus(true));
    let (wallet, owner) = (WalletId::new(), OwnerId::new());
    let now = chrono::Utc::now();
    let hold: waiaas_domain::Transaction = serde_json::from_value(serde_json::json!({
        "id": waiaas_domain::TransactionId::new(), "kind": "hold", "status": "expired",
        "asset": "USD", "amount": 5, "from_wallet_id": wallet, "to_wallet_id": null,
        "destination": "shop", "memo": null, "metadata": {},
        "initiated_by": {"type": "agent", "id": AgentId::new()},
        "idempotency_key": null, "rule": null, "reason": null,
        "budget": {"daily_remaining": null, "hourly_remaining": null},
        "created_at": now, "updated_at": now,
    }))
    .unwrap();
    let inner = Arc::new(SlowPostings {
        entered: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
        outcome: PostingOutcome {
            transaction: hold,
            replayed: false,
            balances: vec![balance(wallet)],
            notified: Some((owner, 7)),
        },
    });
    let cached = crate::cached::CachedTransactions::new(inner, cache.clone());
    let ended = cached.expire_holds(now, 10).await;
    assert_eq!(ended.outcomes.len(), 1, "the committed release is reported");
    assert!(ended.failed.is_some(), "and so is the failure after it");
    let written = writes.lock().unwrap().clone();
    assert!(
        written
            .iter()
            .any(|k| k == &format!("wallet:balance:wallet:{wallet}")),
        "the released balance was written through: {written:?}"
    );
    assert!(
        written
            .iter()
            .any(|k| k == &format!("notifications:unread:owner:{owner}")),
        "the owner's unread count was tombstoned: {written:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_cannot_reach_redis_blocks_every_lease_until_it_can() {
    let reachable = Arc::new(AtomicBool::new(false));
    let mut store = MockCacheStore::new();
    let r = reachable.clone();
    store.expect_ping().returning(move || {
        if r.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(CacheError::Unavailable("cut off".into()))
        }
    });
    store.expect_server_id().returning(|| Ok(None));
    let (blocks, unblocks) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut fence = fence(true);
    fence.checkpoint();
    let b = blocks.clone();
    fence.expect_block_leases().returning(move |_, _| {
        b.fetch_add(1, Ordering::SeqCst);
        Ok(3)
    });
    let u = unblocks.clone();
    fence.expect_unblock_leases().returning(move |_| {
        u.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    fence.expect_renew_lease().returning(|_, _| Ok(Some(4)));
    fence.expect_release_lease().returning(|_| Ok(()));
    fence.expect_mark_stale().returning(|_| Ok(4));
    fence.expect_lease_wait().returning(|_| Ok(Duration::ZERO));
    fence.expect_bump_epoch().returning(|| Ok(()));
    let cache = cache(store, fence, bus(true));
    grant(&cache, 3);
    for _ in 0..3 {
        cache.breaker().failure();
    }
    cache.start();
    wait_until("the leases were blocked, and kept blocked", || {
        blocks.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert_eq!(cache.lease_epoch(), None, "no cached reads while cut off");
    assert_eq!(unblocks.load(Ordering::SeqCst), 0);
    reachable.store(true, Ordering::SeqCst);
    wait_until("the block ended and a lease came back", || {
        unblocks.load(Ordering::SeqCst) == 1 && cache.lease_epoch() == Some(4)
    })
    .await;
    cache.shutdown().await;
}

/// Readers of one miss share its token. When another reader's fill of an older version
/// landed first, this reader's fill of the newer version it read is refused, and Redis holds
/// the older one: before returning the newer version, the reader ends that entry with a
/// tombstone of its version, so that no later read elsewhere can go back to the older one.
#[tokio::test]
async fn a_reader_whose_newer_fill_lost_to_an_older_one_ends_the_older_entry() {
    use waiaas_domain::ports::CacheEntry;
    let id = WalletId::new();
    let older = CacheEntry {
        epoch: 1,
        version: 2,
        value: Some(
            serde_json::to_vec(&WalletBalance {
                version: 2,
                ..balance(id)
            })
            .unwrap(),
        ),
    };
    let mut store = MockCacheStore::new();
    store.expect_lookup().returning(|_, _, _, _, _| {
        Ok(Lookup {
            entry: None,
            fill_token: Some("shared".into()),
        })
    });
    let current = older.clone();
    store.expect_fill().returning(move |_, _, _, _| {
        Ok(WriteOutcome::Rejected {
            current: Some(current.clone()),
        })
    });
    let written = Arc::new(std::sync::Mutex::new(Vec::new()));
    let w = written.clone();
    store.expect_write().returning(move |key, entry, _| {
        w.lock().unwrap().push((key.to_owned(), entry.clone()));
        Ok(WriteOutcome::Stored)
    });
    store.expect_ping().returning(|| Ok(()));
    store.expect_server_id().returning(|| Ok(None));
    let cache = cache(store, fence(true), bus(true));
    grant(&cache, 1);
    let read = cache
        .read(Kind::Balance, &id.to_string(), || async {
            Ok(Some(balance(id)))
        })
        .await
        .unwrap();
    assert_eq!(
        read,
        Some(balance(id)),
        "it returns what it read (version 3)"
    );
    let written = written.lock().unwrap().clone();
    assert_eq!(written.len(), 1, "{written:?}");
    let (key, entry) = &written[0];
    assert_eq!(key, &Kind::Balance.key(id.to_string()));
    assert_eq!((entry.version, entry.value.is_none()), (3, true));
}
