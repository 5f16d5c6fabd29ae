//! The whole service on a three-master Redis Cluster: the cache engine (fills, hits,
//! write-through, the lease) and the rate limiter work across slots.

use std::time::Duration;

use reqwest::StatusCode;
use waiaas_testkit::{RedisCluster, TestDb};
use waiaas_tests::{Options, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_its_cache_and_rate_limits_on_a_redis_cluster() {
    let db = TestDb::new().await;
    let cluster = RedisCluster::start(3)
        .await
        .expect("a three-master cluster");
    let mut settings = TestApp::settings(
        &db,
        &Options {
            rate: Some((1.0, 40)),
            ..Options::default()
        },
    );
    settings.redis.mode = waiaas_app::settings::RedisMode::Cluster;
    settings.redis.nodes = cluster.nodes();
    let app = TestApp::spawn_with(settings).await;
    let cache = app.app.cache.clone().expect("cache");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while cache.lease_epoch().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no cache lease on the cluster"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (_, owner) = app.owner("o").await;
    let (agent, agent_key) = app.agent(&owner, "a").await;
    let mut wallets = Vec::new();
    for _ in 0..4 {
        wallets.push(app.wallet(&owner, &agent, "USD", 1_000).await);
    }
    for (i, w) in wallets.iter().enumerate() {
        let to = &wallets[(i + 1) % wallets.len()];
        let t = app.transfer(&agent_key, w, to, 10, &format!("c-{i}")).await;
        assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
    }
    // Each balance is read twice: a fill, then a hit (the write-through may have filled it).
    for w in &wallets {
        for _ in 0..2 {
            let b = app
                .get(&format!("/v1/wallets/{w}/balance"), &agent_key)
                .await;
            assert_eq!(
                (b.status, b.body["balance"].as_i64()),
                (StatusCode::OK, Some(1_000)),
                "{:?}",
                b.body
            );
        }
    }
    let hits = waiaas_cache::CacheStats::get(&cache.stats.l2_hits);
    assert!(hits >= 4, "balances were served from the cluster: {hits}");
    assert_eq!(
        waiaas_cache::CacheStats::get(&cache.stats.write_failures),
        0
    );

    // The shared limiter counts this principal across the cluster: 40 at once, then 429.
    let mut limited = false;
    for _ in 0..60 {
        if app.get("/v1/agents", &owner).await.status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "the rate limit applies on the cluster");
    app.stop().await;
}
