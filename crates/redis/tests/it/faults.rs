//! Faults: every call fails within about the command timeout while Redis is down, paused or
//! was never there, and works again once it is back. The bounds are hang checks, not
//! performance assertions.

use std::time::{Duration, Instant};

use waiaas_domain::ports::{CacheError, CacheStore, EventBus, LockManager, Rate, RateLimiter};
use waiaas_redis::{Redis, RedisError};
use waiaas_testkit::RedisServer;

use crate::support::{connect, entry, eventually, standalone};

const HANG: Duration = Duration::from_secs(2);
const TTL: Duration = Duration::from_secs(30);
const RATE: Rate = Rate {
    per_second: 100.0,
    burst: 100,
};

/// Runs every kind of call once; returns which failed, and panics if one took too long.
async fn every_call(redis: &Redis) -> Vec<(&'static str, bool)> {
    let mut outcomes = Vec::new();
    macro_rules! timed {
        ($name:literal, $call:expr) => {{
            let started = Instant::now();
            let failed = $call.await.is_err();
            let took = started.elapsed();
            assert!(took < HANG, "{} took {took:?}", $name);
            outcomes.push(($name, failed));
        }};
    }
    timed!("get", redis.get("test:entry:key:k"));
    timed!(
        "lookup",
        redis.lookup("test:entry:key:k", 1, false, "token", TTL)
    );
    timed!(
        "fill",
        redis.fill("test:entry:key:k", &entry(1, 1, Some(b"x")), TTL, "token")
    );
    timed!(
        "write",
        redis.write("test:entry:key:k", &entry(1, 2, Some(b"y")), TTL)
    );
    timed!("delete", redis.delete(&["test:entry:key:k".to_owned()]));
    timed!("scan", redis.scan("*", false));
    timed!("check", redis.check("agent:f", RATE));
    timed!("acquire", redis.acquire("job:name:f", TTL));
    timed!("publish", redis.publish("wallet:events", b"x".to_vec()));
    timed!("ping", CacheStore::ping(redis));
    timed!("run_id", redis.run_id());
    outcomes
}

fn assert_all(outcomes: &[(&str, bool)], failed: bool) {
    let wrong: Vec<_> = outcomes.iter().filter(|(_, f)| *f != failed).collect();
    assert!(
        wrong.is_empty(),
        "expected failed = {failed} for all, got {outcomes:?}"
    );
}

/// Polls until every call succeeds again.
async fn recovers(redis: &Redis) {
    eventually(
        Duration::from_secs(10),
        "every call to succeed again",
        || async {
            every_call(redis)
                .await
                .iter()
                .all(|(_, failed)| !failed)
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn every_call_fails_fast_while_the_server_is_down_and_works_after_a_restart() {
    let mut server = RedisServer::start().await.unwrap();
    let redis = connect(&standalone(&server.url())).await;
    assert_all(&every_call(&redis).await, false);

    server.kill();
    // Right after the kill (before fred notices) and once it is reconnecting.
    assert_all(&every_call(&redis).await, true);
    eventually(Duration::from_secs(5), "the client to notice", || async {
        (!redis.is_connected()).then_some(())
    })
    .await;
    assert_all(&every_call(&redis).await, true);
    match redis.get("test:entry:key:k").await {
        Err(CacheError::Unavailable(_) | CacheError::Timeout) => {}
        other => panic!("a dead server gave {other:?}"),
    }

    server.restart().await.unwrap();
    recovers(&redis).await;
    // The restarted server knows none of the scripts: they load again on first use.
    crate::support::fill(
        &redis,
        "test:entry:key:after",
        &entry(1, 1, Some(b"z")),
        TTL,
    )
    .await
    .unwrap();
    assert_eq!(
        redis.get("test:entry:key:after").await.unwrap(),
        Some(entry(1, 1, Some(b"z")))
    );
}

#[tokio::test]
async fn every_call_times_out_while_the_server_is_paused() {
    let server = RedisServer::start().await.unwrap();
    let redis = connect(&standalone(&server.url())).await;
    assert_all(&every_call(&redis).await, false);

    // Long enough for every call below to time out while it lasts.
    server.pause(Duration::from_secs(10)).await.unwrap();
    let started = Instant::now();
    match redis.get("test:entry:key:k").await {
        Err(CacheError::Timeout | CacheError::Unavailable(_)) => {}
        other => panic!("a paused server gave {other:?}"),
    }
    assert!(started.elapsed() < HANG);
    assert!(matches!(
        redis.run_id().await,
        Err(RedisError::Timeout | RedisError::Unavailable(_))
    ));
    assert_all(&every_call(&redis).await, true);

    recovers(&redis).await;
}

#[tokio::test]
async fn connecting_where_nothing_listens_returns_ok_and_calls_fail_fast() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = standalone(&format!("redis://127.0.0.1:{port}"));
    let started = Instant::now();
    let redis = Redis::connect(&cfg)
        .await
        .expect("connect never fails on a down server");
    assert!(
        started.elapsed() < HANG,
        "connect took {:?}",
        started.elapsed()
    );
    assert!(!redis.is_connected());
    assert!(!redis.status().connected);
    assert_all(&every_call(&redis).await, true);
    assert!(redis.subscribe("wallet:events").await.is_err());
}

#[tokio::test]
async fn a_server_started_after_the_service_is_picked_up() {
    let mut server = RedisServer::start().await.unwrap();
    let cfg = standalone(&server.url());
    server.kill();
    let redis = Redis::connect(&cfg).await.unwrap();
    assert_all(&every_call(&redis).await, true);
    server.restart().await.unwrap();
    recovers(&redis).await;
    assert!(redis.wait_connected(Duration::from_secs(5)).await);
    assert!(redis.status().connected);
}

#[tokio::test]
async fn an_invalid_configuration_is_an_error() {
    let cfg = standalone("not a url");
    assert!(Redis::connect(&cfg).await.is_err());
}

/// What the cache layer must allow for: a command that timed out after it was written is
/// not taken back, and runs when the server gets to it.
#[tokio::test]
async fn a_write_that_timed_out_while_the_server_was_paused_still_lands_afterwards() {
    let server = RedisServer::start().await.unwrap();
    let mut cfg = standalone(&server.url());
    cfg.command_timeout = Duration::from_millis(100);
    let redis = connect(&cfg).await;
    // The write script is loaded first (a NOSCRIPT answer would leave nothing to land).
    redis
        .write("test:entry:key:late", &entry(1, 1, Some(b"v1")), TTL)
        .await
        .unwrap();

    // Shorter than the unresponsive-connection check (1 s), which would drop the connection
    // and with it the command.
    server.pause(Duration::from_millis(600)).await.unwrap();
    let write = redis
        .write("test:entry:key:late", &entry(1, 2, Some(b"v2")), TTL)
        .await;
    assert!(matches!(write, Err(CacheError::Timeout)), "{write:?}");

    eventually(
        Duration::from_secs(5),
        "the timed-out write to land",
        || async {
            let current = redis.get("test:entry:key:late").await.ok().flatten()?;
            (current.version == 2).then_some(())
        },
    )
    .await;
}
