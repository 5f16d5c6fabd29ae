//! The stale-fill race that versioned entries close: a reader that read version N from the
//! database and fills after version N + 1 was written through never lands.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{Barrier, Mutex};
use waiaas_domain::ports::{CacheStore, WriteOutcome};

use crate::support::{entry, shared};

const TTL: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_fill_that_read_an_older_version_does_not_land_after_a_write_through() {
    let (redis, _) = shared().await;
    let key = "wallet:balance:wallet:race";
    redis
        .fill(key, &entry(1, 1, Some(b"v1")), TTL)
        .await
        .unwrap();
    // The reader reads version 1 from "the database", then stalls…
    let read = entry(1, 1, Some(b"v1"));
    // …while a writer commits version 2 and writes it through…
    let written = entry(1, 2, Some(b"v2"));
    assert_eq!(
        redis.write(key, &written, TTL).await.unwrap(),
        WriteOutcome::Stored
    );
    // …so the reader's late fill is rejected, and tells it what won.
    let late = redis.fill(key, &read, TTL).await.unwrap();
    assert_eq!(
        late,
        WriteOutcome::Rejected {
            current: Some(written.clone())
        }
    );
    assert_eq!(redis.get(key).await.unwrap(), Some(written));
}

#[tokio::test]
async fn a_stale_fill_after_a_tombstone_does_not_land_either() {
    let (redis, _) = shared().await;
    let key = "auth:session:token:race";
    redis.write(key, &entry(1, 2, None), TTL).await.unwrap();
    let stale = redis
        .fill(key, &entry(1, 1, Some(b"revoked session")), TTL)
        .await;
    assert!(matches!(stale.unwrap(), WriteOutcome::Rejected { .. }));
    assert_eq!(redis.get(key).await.unwrap(), Some(entry(1, 2, None)));
}

/// Many readers and writers at once: whatever the interleaving, once the last write is
/// acknowledged every read sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_readers_never_leave_an_older_version_behind_the_last_write() {
    let (redis, _) = shared().await;
    let key = "wallet:balance:wallet:concurrent";
    // The "database": the committed version, bumped under a lock like a row lock.
    let db = Arc::new((Mutex::new(()), AtomicI64::new(0)));
    let start = Arc::new(Barrier::new(12));
    let mut tasks = Vec::new();
    for writer in 0..4 {
        let (redis, db, start) = (redis.clone(), Arc::clone(&db), Arc::clone(&start));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            for _ in 0..25 {
                let _row = db.0.lock().await;
                let version = db.1.fetch_add(1, Ordering::SeqCst) + 1;
                let value = format!("w{writer}v{version}");
                redis
                    .write(key, &entry(1, version, Some(value.as_bytes())), TTL)
                    .await
                    .unwrap();
            }
        }));
    }
    for _ in 0..8 {
        let (redis, db, start) = (redis.clone(), Arc::clone(&db), Arc::clone(&start));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            for _ in 0..50 {
                let version = db.1.load(Ordering::SeqCst);
                tokio::task::yield_now().await;
                let value = format!("read v{version}");
                redis
                    .fill(key, &entry(1, version, Some(value.as_bytes())), TTL)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let last = db.1.load(Ordering::SeqCst);
    let cached = redis.get(key).await.unwrap().unwrap();
    assert_eq!(cached.version, last);
    assert!(
        String::from_utf8(cached.value.unwrap())
            .unwrap()
            .starts_with('w')
    );
}
