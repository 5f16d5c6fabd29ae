//! The stale-fill races that versioned entries and fill tokens close: a reader that read
//! version N from the database and fills after version N + 1 was written through never
//! lands, not even when version N + 1 was evicted (or deleted) before the fill arrives.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{Barrier, Mutex};
use waiaas_domain::ports::{CacheStore, WriteOutcome};

use crate::support::{entry, shared, token};

const TTL: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_fill_that_read_an_older_version_does_not_land_after_a_write_through() {
    let (redis, _) = shared().await;
    let key = "wallet:balance:wallet:race";
    crate::support::fill(&redis, key, &entry(1, 1, Some(b"v1")), TTL)
        .await
        .unwrap();
    // A reader misses (its lookup hands out the fill token), reads version 1 from "the
    // database", then stalls…
    let token = token(&redis, key, 1).await;
    let read = entry(1, 1, Some(b"v1"));
    // …while a writer commits version 2 and writes it through…
    let written = entry(1, 2, Some(b"v2"));
    assert_eq!(
        redis.write(key, &written, TTL).await.unwrap(),
        WriteOutcome::Stored
    );
    // …so the reader's late fill is rejected, and tells it what won.
    let late = redis.fill(key, &read, TTL, &token).await.unwrap();
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
    let stale =
        crate::support::fill(&redis, key, &entry(1, 1, Some(b"revoked session")), TTL).await;
    assert!(matches!(stale.unwrap(), WriteOutcome::Rejected { .. }));
    assert_eq!(redis.get(key).await.unwrap(), Some(entry(1, 2, None)));
}

#[tokio::test]
async fn a_slow_fill_cannot_bring_an_old_value_back_after_the_newer_one_was_evicted() {
    let (redis, cfg) = shared().await;
    let key = "wallet:balance:wallet:evicted";
    // A reader misses and reads version 3 from the database, then stalls…
    let token = token(&redis, key, 1).await;
    let read = entry(1, 3, Some(b"v3"));
    // …a deposit commits version 4 and writes it through…
    redis
        .write(key, &entry(1, 4, Some(b"v4")), TTL)
        .await
        .unwrap();
    // …and Redis evicts it (an LRU eviction or an operator's DEL look the same).
    let plain = crate::support::Inspector::new(&cfg).await;
    plain.del(&format!("{}{key}", cfg.key_prefix)).await;
    // The late fill has nothing newer to lose against, but its token is gone with the key.
    let late = redis.fill(key, &read, TTL, &token).await.unwrap();
    assert_eq!(late, WriteOutcome::Rejected { current: None });
    assert_eq!(redis.get(key).await.unwrap(), None, "v3 came back");
}

#[tokio::test]
async fn readers_of_one_miss_share_a_token_and_the_first_fill_ends_it() {
    let (redis, cfg) = shared().await;
    let key = "wallet:balance:wallet:shared";
    let first = token(&redis, key, 1).await;
    assert_eq!(token(&redis, key, 1).await, first, "one token per miss");
    let inspect = crate::support::Inspector::new(&cfg).await;
    let pttl = inspect.pttl(&format!("{}{key}", cfg.key_prefix)).await;
    assert!(pttl > 0, "the token's key lives a TTL: {pttl}");
    assert_eq!(
        redis.get(key).await.unwrap(),
        None,
        "a token is not an entry"
    );
    assert_eq!(
        redis
            .fill(key, &entry(1, 2, Some(b"v2")), TTL, &first)
            .await
            .unwrap(),
        WriteOutcome::Stored
    );
    // The fill ended the token: a reader holding it lands nothing more.
    assert!(matches!(
        redis
            .fill(key, &entry(1, 2, Some(b"other")), TTL, &first)
            .await
            .unwrap(),
        WriteOutcome::Rejected { .. }
    ));
    // A hit hands out no token; a miss of another epoch does, a new one.
    let hit = redis.lookup(key, 1, false, "x", TTL).await.unwrap();
    assert_eq!(hit.hit(1), Some(&b"v2"[..]));
    let miss = redis.lookup(key, 2, false, "y", TTL).await.unwrap();
    assert_eq!(miss.hit(2), None);
    assert_eq!(miss.fill_token.as_deref(), Some("y"));
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
                // A miss, then the database read, then the fill with the miss's token.
                let token = token(&redis, key, 1).await;
                let version = db.1.load(Ordering::SeqCst);
                tokio::task::yield_now().await;
                let value = format!("read v{version}");
                redis
                    .fill(key, &entry(1, version, Some(value.as_bytes())), TTL, &token)
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
    // The last version's write-through, or a fill that read that same committed version
    // before the write-through landed (both copy the same row), or a tombstone of it (a
    // write-through over a tombstone): never an older value.
    if let Some(value) = cached.value {
        let value = String::from_utf8(value).unwrap();
        assert!(value.ends_with(&format!("v{last}")), "{value}");
    }
}

/// A write-through that arrives late (its command timed out, or its task was slow) must not
/// bring its version back after a newer one was written and then evicted: versions alone
/// would let it land on the empty key, and every instance would serve it.
#[tokio::test]
async fn a_late_write_through_cannot_bring_an_old_value_back_after_the_newer_one_was_evicted() {
    let (redis, cfg) = shared().await;
    let key = "notifications:unread:owner:late";
    crate::support::fill(&redis, key, &entry(1, 1, Some(b"v1")), TTL)
        .await
        .unwrap();
    // Versions 2 and 3 commit; 3 is written through first, 2's write is still on its way…
    redis
        .write(key, &entry(1, 3, Some(b"v3")), TTL)
        .await
        .unwrap();
    // …Redis evicts the key…
    let plain = crate::support::Inspector::new(&cfg).await;
    plain.del(&format!("{}{key}", cfg.key_prefix)).await;
    // …and version 2's write-through arrives: it lands only as a tombstone, never served.
    assert_eq!(
        redis
            .write(key, &entry(1, 2, Some(b"v2")), TTL)
            .await
            .unwrap(),
        WriteOutcome::Stored
    );
    assert_eq!(redis.get(key).await.unwrap(), Some(entry(1, 2, None)));
    let miss = redis.lookup(key, 1, false, "t", TTL).await.unwrap();
    assert_eq!(miss.hit(1), None, "v2 came back");
    // Nor over that tombstone: a replay writing version 3 through again finds it and leaves
    // a tombstone too; the next reader's fill brings the current value.
    redis
        .write(key, &entry(1, 3, Some(b"v3")), TTL)
        .await
        .unwrap();
    assert_eq!(redis.get(key).await.unwrap(), Some(entry(1, 3, None)));
    let token = token(&redis, key, 1).await;
    assert_eq!(
        redis
            .fill(key, &entry(1, 3, Some(b"v3")), TTL, &token)
            .await
            .unwrap(),
        WriteOutcome::Stored
    );
    // Over a value, a newer write-through lands as a value, as always.
    redis
        .write(key, &entry(1, 4, Some(b"v4")), TTL)
        .await
        .unwrap();
    assert_eq!(
        redis.get(key).await.unwrap(),
        Some(entry(1, 4, Some(b"v4")))
    );
}
