//! Token locks.

use std::time::Duration;

use waiaas_domain::ports::{LockLease, LockManager};

use crate::support::{Inspector, eventually, shared};

const TTL: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_held_lock_cannot_be_taken_until_its_owner_releases_it() {
    let (redis, _) = shared().await;
    let lease = redis.acquire("job:name:sweep", TTL).await.unwrap().unwrap();
    assert_eq!(lease.resource, "job:name:sweep");
    assert_eq!(lease.token.len(), 32);
    assert_eq!(redis.acquire("job:name:sweep", TTL).await.unwrap(), None);
    assert!(
        redis
            .acquire("job:name:other", TTL)
            .await
            .unwrap()
            .is_some()
    );
    assert!(redis.release(&lease).await.unwrap());
    let again = redis.acquire("job:name:sweep", TTL).await.unwrap().unwrap();
    assert_ne!(again.token, lease.token);
}

#[tokio::test]
async fn a_non_owner_can_neither_release_nor_extend_the_lock() {
    let (redis, cfg) = shared().await;
    let inspect = Inspector::new(&cfg).await;
    let lease = redis
        .acquire("job:name:j", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let thief = LockLease {
        resource: lease.resource.clone(),
        token: "0".repeat(32),
    };
    assert!(!redis.release(&thief).await.unwrap());
    assert!(!redis.extend(&thief, Duration::from_secs(60)).await.unwrap());
    let pttl = inspect
        .pttl(&format!("{}lock:job:name:j", cfg.key_prefix))
        .await;
    assert!(pttl > 0 && pttl <= 5_000, "PTTL {pttl}");
    assert_eq!(redis.acquire("job:name:j", TTL).await.unwrap(), None);
    assert!(redis.release(&lease).await.unwrap());
    assert!(!redis.release(&lease).await.unwrap(), "released twice");
}

#[tokio::test]
async fn the_owner_can_extend_its_lock() {
    let (redis, cfg) = shared().await;
    let inspect = Inspector::new(&cfg).await;
    let lease = redis
        .acquire("job:name:e", Duration::from_secs(2))
        .await
        .unwrap()
        .unwrap();
    assert!(redis.extend(&lease, Duration::from_secs(60)).await.unwrap());
    let pttl = inspect
        .pttl(&format!("{}lock:job:name:e", cfg.key_prefix))
        .await;
    assert!(pttl > 2_000 && pttl <= 60_000, "PTTL {pttl}");
}

#[tokio::test]
async fn a_lock_expires_by_itself() {
    let (redis, _) = shared().await;
    let lease = redis
        .acquire("job:name:x", Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    let next = eventually(Duration::from_secs(5), "the lock to expire", || async {
        redis.acquire("job:name:x", TTL).await.unwrap()
    })
    .await;
    assert_ne!(next.token, lease.token);
    assert!(
        !redis.extend(&lease, TTL).await.unwrap(),
        "an expired lease was extended"
    );
}

#[tokio::test]
async fn a_lock_without_a_ttl_is_refused() {
    let (redis, _) = shared().await;
    assert!(redis.acquire("job:name:z", Duration::ZERO).await.is_err());
    let lease = redis.acquire("job:name:z", TTL).await.unwrap().unwrap();
    assert!(redis.extend(&lease, Duration::ZERO).await.is_err());
}
