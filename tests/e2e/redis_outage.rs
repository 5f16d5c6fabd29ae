//! The service against a `redis-server` the test kills: requests keep succeeding, readiness
//! says degraded, and it recovers when Redis is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use waiaas_testkit::{RedisServer, TestDb};
use waiaas_tests::{Options, TestApp};

async fn wait_for_readiness(app: &TestApp, expected: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = app.call(Method::GET, "/readyz", None, None, None).await;
        if r.status == StatusCode::OK && r.str("status") == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readiness never became {expected}: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_keep_succeeding_while_redis_is_killed_and_restarted() {
    let db = TestDb::new().await;
    let mut redis = RedisServer::start().await.expect("redis-server");
    let app = Arc::new(
        TestApp::spawn(
            &db,
            Options {
                redis_url: Some(redis.url()),
                rate: Some((10_000.0, 10_000)),
                ..Options::default()
            },
        )
        .await,
    );
    let (_, owner) = app.owner("o").await;
    let (agent, agent_key) = app.agent(&owner, "a").await;
    let token = app
        .post("/v1/sessions", &agent_key, json!({}))
        .await
        .str("token");
    let a = app.wallet(&owner, &agent, "USD", 100_000).await;
    let b = app.wallet(&owner, &agent, "USD", 100_000).await;
    wait_for_readiness(&app, "ready").await;

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (app, token, a, b, stop, ok, failed) = (
            app.clone(),
            token.clone(),
            a.clone(),
            b.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
                let r = if worker % 2 == 0 {
                    app.transfer(&token, from, to, 1, &format!("w{worker}-{i}"))
                        .await
                } else {
                    app.get(&format!("/v1/wallets/{from}/balance"), &token)
                        .await
                };
                if r.status.is_success() {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("failed: {} {:?}", r.status, r.body);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.kill();
    wait_for_readiness(&app, "degraded").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart().await.expect("redis restarted");
    wait_for_readiness(&app, "ready").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed because of Redis"
    );
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "the load ran: {}",
        ok.load(Ordering::Relaxed)
    );
    let total = app
        .get(&format!("/v1/wallets/{a}/balance"), &owner)
        .await
        .body["balance"]
        .as_i64()
        .unwrap()
        + app
            .get(&format!("/v1/wallets/{b}/balance"), &owner)
            .await
            .body["balance"]
            .as_i64()
            .unwrap();
    assert_eq!(total, 200_000, "no money appeared or vanished");
    Arc::try_unwrap(app).expect("sole owner").stop().await;
}
