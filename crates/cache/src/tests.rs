//! Unit tests of the cache engine over mocked ports: single-flight, the breaker in front of
//! the store, L1 bypass while the event bus is down, and the fence after a failed write.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use waiaas_domain::ports::{
    BusStatus, CacheError, MockCacheFence, MockCacheStore, MockEventBus, WriteOutcome,
};
use waiaas_domain::{AgentId, AssetCode, Money, OwnerId, WalletBalance, WalletId, WalletOwnership};

use crate::{Cache, CacheConfig, Change, Kind};

fn store_that_misses() -> MockCacheStore {
    let mut s = MockCacheStore::new();
    s.expect_get().returning(|_| Ok(None));
    s.expect_fill()
        .returning(|_, _, _| Ok(WriteOutcome::Stored));
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
            Ok(1)
        } else {
            Err(waiaas_domain::RepoError(anyhow::anyhow!("no lease")))
        }
    });
    f.expect_release_lease().returning(|_| Ok(()));
    f.expect_mark_stale().returning(|_| Ok((2, Duration::ZERO)));
    f.expect_wait_for_leases()
        .returning(|_, _| Ok(Duration::ZERO));
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
    while loads.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
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
    tokio::time::sleep(Duration::from_millis(50)).await;
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
    // Read 1: the get and the fill fail; read 2: the get fails and the breaker (3 failures)
    // opens; nothing reaches the store after that.
    store
        .expect_get()
        .times(2)
        .returning(|_| Err(CacheError::Timeout));
    store
        .expect_fill()
        .times(1)
        .returning(|_, _, _| Err(CacheError::Timeout));
    store.expect_server_id().returning(|| Ok(None));
    store.expect_ping().returning(|| Err(CacheError::Timeout));
    let cache = cache(store, fence(true), bus(true));
    // A lease is needed for L2 reads to be tried at all.
    cache
        .lease
        .granted(1, std::time::Instant::now(), Duration::from_secs(60));
    let id = WalletId::new();
    for _ in 0..10 {
        let v = cache
            .read(Kind::Balance, &id.to_string(), || async {
                Ok(Some(balance(id)))
            })
            .await
            .unwrap();
        assert_eq!(v, Some(balance(id)), "reads fall through to PostgreSQL");
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

#[tokio::test]
async fn a_failed_write_through_raises_the_fence_before_returning() {
    let mut store = store_that_misses();
    store.checkpoint();
    store
        .expect_write()
        .returning(|_, _, _| Err(CacheError::Unavailable("down".into())));
    store.expect_server_id().returning(|| Ok(None));
    let mut fence = MockCacheFence::new();
    let mut seq = mockall::Sequence::new();
    // Another instance's lease of the stale epoch is live for a moment, then gone.
    fence
        .expect_mark_stale()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok((9, Duration::from_millis(10))));
    let waits = Arc::new(AtomicUsize::new(0));
    let w = waits.clone();
    fence
        .expect_wait_for_leases()
        .times(1)
        .in_sequence(&mut seq)
        .withf(|_, e| *e == 9)
        .returning(move |_, _| {
            w.fetch_add(1, Ordering::SeqCst);
            Ok(Duration::ZERO)
        });
    let cache = cache(store, fence, bus(true));
    cache
        .lease
        .granted(8, std::time::Instant::now(), Duration::from_secs(60));
    let id = WalletId::new();
    cache
        .apply(vec![Change::value(Kind::Balance, id, &balance(id))])
        .await;
    assert_eq!(
        waits.load(Ordering::SeqCst),
        1,
        "it waited until no lease of the stale epoch was live"
    );
    assert_eq!(
        cache.lease_epoch(),
        None,
        "this instance stopped serving the old epoch"
    );
    assert_eq!(cache.lease.epoch_hint(), 9);
}
