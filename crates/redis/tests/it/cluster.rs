//! Redis Cluster: the same adapters over keys spread across every slot range.

use std::collections::HashSet;
use std::time::Duration;

use waiaas_domain::ports::{CacheStore, LockManager, Rate, RateLimiter, WriteOutcome};
use waiaas_redis::RedisMode;
use waiaas_testkit::RedisCluster;

use crate::support::{Inspector, config, connect, entry};

const TTL: Duration = Duration::from_secs(30);

#[tokio::test]
async fn fills_writes_scans_locks_and_rate_limits_work_across_a_cluster() {
    let cluster = RedisCluster::start(3).await.unwrap();
    let cfg = config(RedisMode::Cluster {
        nodes: cluster.nodes(),
    });
    let redis = connect(&cfg).await;
    let inspect = Inspector::new(&cfg).await;

    let keys: Vec<String> = (0..300)
        .map(|i| format!("wallet:balance:wallet:{i}"))
        .collect();
    let slots: HashSet<u16> = keys
        .iter()
        .map(|k| fred::util::redis_keyslot(format!("{}{k}", cfg.key_prefix).as_bytes()))
        .collect();
    assert!(slots.len() > 100, "the keys use {} slots", slots.len());

    for key in &keys {
        assert_eq!(
            crate::support::fill(&redis, key, &entry(1, 1, Some(b"v1")), TTL)
                .await
                .unwrap(),
            WriteOutcome::Stored
        );
        assert_eq!(
            redis
                .write(key, &entry(1, 2, Some(b"v2")), TTL)
                .await
                .unwrap(),
            WriteOutcome::Stored
        );
        let stale = crate::support::fill(&redis, key, &entry(1, 1, Some(b"v1")), TTL)
            .await
            .unwrap();
        assert!(matches!(stale, WriteOutcome::Rejected { .. }));
    }
    for key in &keys {
        assert_eq!(
            redis.get(key).await.unwrap(),
            Some(entry(1, 2, Some(b"v2")))
        );
        let pttl = inspect.pttl(&format!("{}{key}", cfg.key_prefix)).await;
        assert!(pttl > 0 && pttl <= 30_000, "PTTL {pttl}");
    }
    crate::support::fill(
        &redis,
        "wallet:policy:wallet:1",
        &entry(1, 1, Some(b"p")),
        TTL,
    )
    .await
    .unwrap();

    assert_eq!(redis.scan("wallet:balance:*", false).await.unwrap(), 300);
    redis.delete(&keys[..10]).await.unwrap();
    assert_eq!(redis.scan("wallet:balance:*", true).await.unwrap(), 290);
    assert_eq!(redis.scan("wallet:*", false).await.unwrap(), 1);

    let rate = Rate {
        per_second: 1.0,
        burst: 2,
    };
    for agent in 0..20 {
        let subject = format!("agent:{agent}");
        assert!(redis.check(&subject, rate).await.unwrap().allowed);
        assert!(redis.check(&subject, rate).await.unwrap().allowed);
        assert!(!redis.check(&subject, rate).await.unwrap().allowed);
    }
    let lease = redis
        .acquire("job:name:cluster", TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(redis.extend(&lease, TTL).await.unwrap());
    assert!(redis.release(&lease).await.unwrap());

    redis.ping().await.unwrap();
    let run_id = redis.run_id().await.unwrap();
    assert_eq!(run_id.split(',').count(), 3, "{run_id}");
}
