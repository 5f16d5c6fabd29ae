//! The cache store: versioned entries, the fill and write rules, TTLs, delete and scan.

use std::time::Duration;

use waiaas_domain::ports::{CacheError, CacheStore, WriteOutcome};
use waiaas_testkit::RedisServer;

use crate::support::{Inspector, connect, entry, shared, standalone};

const TTL: Duration = Duration::from_secs(30);

fn rejected_with(current: waiaas_domain::ports::CacheEntry) -> WriteOutcome {
    WriteOutcome::Rejected {
        current: Some(current),
    }
}

#[tokio::test]
async fn a_missing_entry_reads_as_none() {
    let (redis, _) = shared().await;
    assert_eq!(redis.get("wallet:balance:wallet:none").await.unwrap(), None);
}

#[tokio::test]
async fn a_filled_entry_reads_back_with_its_bytes_epoch_and_version() {
    let (redis, _) = shared().await;
    let stored = entry(3, 7, Some(&[0, 159, 146, 150, 255]));
    let outcome = crate::support::fill(&redis, "wallet:balance:wallet:1", &stored, TTL).await;
    assert_eq!(outcome.unwrap(), WriteOutcome::Stored);
    assert_eq!(
        redis.get("wallet:balance:wallet:1").await.unwrap(),
        Some(stored)
    );
    let empty = entry(3, 1, Some(b""));
    crate::support::fill(&redis, "test:entry:key:empty", &empty, TTL)
        .await
        .unwrap();
    assert_eq!(
        redis.get("test:entry:key:empty").await.unwrap(),
        Some(empty)
    );
}

#[tokio::test]
async fn a_fill_older_than_the_stored_version_is_rejected_and_returns_the_stored_entry() {
    let (redis, _) = shared().await;
    let newer = entry(1, 5, Some(b"five"));
    crate::support::fill(&redis, "test:entry:key:k", &newer, TTL)
        .await
        .unwrap();
    let outcome =
        crate::support::fill(&redis, "test:entry:key:k", &entry(1, 4, Some(b"four")), TTL).await;
    assert_eq!(outcome.unwrap(), rejected_with(newer.clone()));
    assert_eq!(redis.get("test:entry:key:k").await.unwrap(), Some(newer));
}

#[tokio::test]
async fn a_fill_of_the_same_version_lands_only_over_a_tombstone() {
    let (redis, _) = shared().await;
    let value = entry(1, 5, Some(b"five"));
    crate::support::fill(&redis, "test:entry:key:k", &value, TTL)
        .await
        .unwrap();
    let again = crate::support::fill(
        &redis,
        "test:entry:key:k",
        &entry(1, 5, Some(b"other")),
        TTL,
    )
    .await;
    assert_eq!(again.unwrap(), rejected_with(value.clone()));

    let tombstone = entry(1, 6, None);
    redis
        .write("test:entry:key:k", &tombstone, TTL)
        .await
        .unwrap();
    assert_eq!(
        redis.get("test:entry:key:k").await.unwrap(),
        Some(tombstone)
    );
    let refill = entry(1, 6, Some(b"six"));
    assert_eq!(
        crate::support::fill(&redis, "test:entry:key:k", &refill, TTL)
            .await
            .unwrap(),
        WriteOutcome::Stored
    );
    assert_eq!(redis.get("test:entry:key:k").await.unwrap(), Some(refill));
}

#[tokio::test]
async fn a_fill_of_a_newer_epoch_lands_when_its_version_is_not_lower() {
    let (redis, _) = shared().await;
    crate::support::fill(
        &redis,
        "test:entry:key:k",
        &entry(1, 5, Some(b"old epoch")),
        TTL,
    )
    .await
    .unwrap();
    let same_version = entry(2, 5, Some(b"new epoch"));
    assert_eq!(
        crate::support::fill(&redis, "test:entry:key:k", &same_version, TTL)
            .await
            .unwrap(),
        WriteOutcome::Stored
    );
    assert_eq!(
        redis.get("test:entry:key:k").await.unwrap(),
        Some(same_version.clone())
    );

    let lower = crate::support::fill(
        &redis,
        "test:entry:key:k",
        &entry(3, 4, Some(b"lower")),
        TTL,
    )
    .await;
    assert_eq!(lower.unwrap(), rejected_with(same_version));
}

#[tokio::test]
async fn a_fill_of_an_older_epoch_with_a_higher_version_lands_under_the_newer_epoch() {
    // The filler's value was read after its miss, so it is newer than what the key holds,
    // whatever epoch the filler knew of: it lands, and keeps the key's newer epoch.
    let (redis, _) = shared().await;
    let current = entry(5, 1, Some(b"epoch five"));
    crate::support::fill(&redis, "test:entry:key:k", &current, TTL)
        .await
        .unwrap();
    let outcome = crate::support::fill(
        &redis,
        "test:entry:key:k",
        &entry(4, 9, Some(b"version nine")),
        TTL,
    )
    .await;
    assert_eq!(outcome.unwrap(), WriteOutcome::Stored);
    assert_eq!(
        redis.get("test:entry:key:k").await.unwrap(),
        Some(entry(5, 9, Some(b"version nine")))
    );
    // A lower version never lands, whatever its epoch.
    let lower = crate::support::fill(
        &redis,
        "test:entry:key:k",
        &entry(7, 8, Some(b"version eight")),
        TTL,
    )
    .await;
    assert_eq!(
        lower.unwrap(),
        rejected_with(entry(5, 9, Some(b"version nine")))
    );
}

#[tokio::test]
async fn versions_beyond_the_precision_of_a_double_are_compared_exactly() {
    let (redis, _) = shared().await;
    // 2^53 + 1 and 2^53 + 2 are the same double.
    let big = 9_007_199_254_740_993_i64;
    crate::support::fill(
        &redis,
        "test:entry:key:k",
        &entry(i64::MAX, big, Some(b"a")),
        TTL,
    )
    .await
    .unwrap();
    let next = entry(i64::MAX, big + 1, Some(b"b"));
    assert_eq!(
        redis.write("test:entry:key:k", &next, TTL).await.unwrap(),
        WriteOutcome::Stored
    );
    let stale = crate::support::fill(
        &redis,
        "test:entry:key:k",
        &entry(i64::MAX, big, Some(b"a")),
        TTL,
    )
    .await;
    assert_eq!(stale.unwrap(), rejected_with(next));
    crate::support::fill(
        &redis,
        "test:entry:key:neg",
        &entry(-5, -3, Some(b"n")),
        TTL,
    )
    .await
    .unwrap();
    let above = entry(-5, -2, Some(b"m"));
    assert_eq!(
        crate::support::fill(&redis, "test:entry:key:neg", &above, TTL)
            .await
            .unwrap(),
        WriteOutcome::Stored
    );
}

#[tokio::test]
async fn a_write_lands_only_above_the_stored_version_and_keeps_the_higher_epoch() {
    let (redis, _) = shared().await;
    assert_eq!(
        crate::support::fill(&redis, "test:entry:key:k", &entry(4, 1, Some(b"one")), TTL)
            .await
            .unwrap(),
        WriteOutcome::Stored
    );
    let same = redis
        .write("test:entry:key:k", &entry(9, 1, Some(b"again")), TTL)
        .await;
    assert_eq!(same.unwrap(), rejected_with(entry(4, 1, Some(b"one"))));
    // An older epoch's write of a newer version lands, under the newer epoch.
    assert_eq!(
        redis
            .write("test:entry:key:k", &entry(2, 2, Some(b"two")), TTL)
            .await
            .unwrap(),
        WriteOutcome::Stored
    );
    assert_eq!(
        redis.get("test:entry:key:k").await.unwrap(),
        Some(entry(4, 2, Some(b"two")))
    );
    redis
        .write("test:entry:key:k", &entry(7, 3, None), TTL)
        .await
        .unwrap();
    assert_eq!(
        redis.get("test:entry:key:k").await.unwrap(),
        Some(entry(7, 3, None))
    );
}

#[tokio::test]
async fn every_stored_entry_has_a_ttl_no_longer_than_asked() {
    let (redis, cfg) = shared().await;
    let inspect = Inspector::new(&cfg).await;
    let ttl = Duration::from_secs(10);
    crate::support::fill(&redis, "test:entry:key:a", &entry(1, 1, Some(b"x")), ttl)
        .await
        .unwrap();
    redis
        .write("test:entry:key:b", &entry(1, 1, None), ttl)
        .await
        .unwrap();
    redis
        .write("test:entry:key:a", &entry(1, 2, Some(b"y")), ttl)
        .await
        .unwrap();
    for key in ["test:entry:key:a", "test:entry:key:b"] {
        let pttl = inspect.pttl(&format!("{}{key}", cfg.key_prefix)).await;
        assert!(pttl > 0 && pttl <= 10_000, "PTTL of {key} is {pttl}");
    }
}

#[tokio::test]
async fn a_zero_ttl_is_refused_and_nothing_is_written() {
    let (redis, cfg) = shared().await;
    let inspect = Inspector::new(&cfg).await;
    let refused = |result: Result<WriteOutcome, CacheError>| match result {
        Err(CacheError::Unknown(e)) => assert!(e.to_string().contains("no key without a TTL")),
        other => panic!("a zero TTL was not refused: {other:?}"),
    };
    let key = "test:entry:key:z";
    refused(
        redis
            .write(key, &entry(1, 1, Some(b"x")), Duration::ZERO)
            .await,
    );
    assert!(
        !inspect.exists(&format!("{}{key}", cfg.key_prefix)).await,
        "a refused write left a key behind"
    );
    let token = crate::support::token(&redis, key, 1).await;
    refused(
        redis
            .fill(key, &entry(1, 1, Some(b"x")), Duration::ZERO, &token)
            .await,
    );
    assert_eq!(
        redis.get(key).await.unwrap(),
        None,
        "a refused fill stored an entry"
    );
}

#[tokio::test]
async fn delete_removes_the_given_entries_only() {
    let (redis, _) = shared().await;
    for key in ["test:entry:key:a", "test:entry:key:b", "test:entry:key:c"] {
        crate::support::fill(&redis, key, &entry(1, 1, Some(b"x")), TTL)
            .await
            .unwrap();
    }
    redis
        .delete(&[
            "test:entry:key:a".to_owned(),
            "test:entry:key:b".to_owned(),
            "test:entry:key:missing".to_owned(),
        ])
        .await
        .unwrap();
    redis.delete(&[]).await.unwrap();
    assert_eq!(redis.get("test:entry:key:a").await.unwrap(), None);
    assert_eq!(redis.get("test:entry:key:b").await.unwrap(), None);
    assert!(redis.get("test:entry:key:c").await.unwrap().is_some());
}

#[tokio::test]
async fn scan_counts_and_deletes_only_this_services_matching_keys() {
    let (redis, _) = shared().await;
    let (other, _) = shared().await;
    for i in 0..2500 {
        crate::support::fill(
            &redis,
            &format!("wallet:balance:wallet:{i}"),
            &entry(1, 1, Some(b"x")),
            TTL,
        )
        .await
        .unwrap();
    }
    crate::support::fill(
        &redis,
        "wallet:policy:wallet:1",
        &entry(1, 1, Some(b"p")),
        TTL,
    )
    .await
    .unwrap();
    crate::support::fill(
        &other,
        "wallet:balance:wallet:1",
        &entry(1, 1, Some(b"o")),
        TTL,
    )
    .await
    .unwrap();

    assert_eq!(redis.scan("wallet:balance:*", false).await.unwrap(), 2500);
    assert_eq!(redis.scan("wallet:*", false).await.unwrap(), 2501);
    assert_eq!(redis.scan("wallet:balance:*", true).await.unwrap(), 2500);
    assert_eq!(redis.scan("wallet:balance:*", false).await.unwrap(), 0);
    assert!(redis.get("wallet:policy:wallet:1").await.unwrap().is_some());
    assert!(
        other
            .get("wallet:balance:wallet:1")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn the_run_id_changes_when_the_server_restarts() {
    let mut server = RedisServer::start().await.unwrap();
    let redis = connect(&standalone(&server.url())).await;
    let first = redis.run_id().await.unwrap();
    assert_eq!(first.len(), 40, "{first}");
    assert_eq!(redis.run_id().await.unwrap(), first);
    assert_eq!(redis.server_id().await.unwrap(), Some(first.clone()));
    server.restart().await.unwrap();
    let second =
        crate::support::eventually(Duration::from_secs(10), "run_id after restart", || async {
            redis.run_id().await.ok()
        })
        .await;
    assert_ne!(first, second);
}
