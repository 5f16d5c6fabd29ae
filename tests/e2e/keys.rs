//! Every key the service leaves in Redis has a TTL and follows the naming rule.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use waiaas_cache::is_valid_key;
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

/// Every key matching `pattern`, with its PTTL (one `redis-cli` for the scan, one for all the
/// PTTLs, fed on stdin).
async fn scan(url: &str, pattern: &str) -> Vec<(String, i64)> {
    use tokio::io::AsyncWriteExt as _;
    let out = tokio::process::Command::new("redis-cli")
        .args(["-u", url, "--scan", "--pattern", pattern])
        .output()
        .await
        .expect("redis-cli");
    let keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if keys.is_empty() {
        return Vec::new();
    }
    let mut child = tokio::process::Command::new("redis-cli")
        .args(["-u", url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli");
    let mut stdin = child.stdin.take().expect("stdin");
    let script: String = keys.iter().map(|k| format!("PTTL \"{k}\"\n")).collect();
    // Written while the replies are read, or both pipes fill up and wait for each other.
    let writer = tokio::spawn(async move {
        stdin
            .write_all(script.as_bytes())
            .await
            .expect("commands sent");
    });
    let out = child.wait_with_output().await.expect("redis-cli");
    writer.await.expect("writer");
    let ttls: Vec<i64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap_or(-3))
        .collect();
    assert_eq!(ttls.len(), keys.len(), "one PTTL per key");
    keys.into_iter().zip(ttls).collect()
}

/// Strips a test prefix (`t-<hex>/`) when there is one.
fn unprefixed(key: &str) -> &str {
    key.split_once('/').map_or(key, |(_, rest)| rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_in_redis_has_a_ttl_and_follows_the_naming_rule() {
    let db = TestDb::new().await;
    let opts = Options {
        // One token a second and a large burst: the rate-limit key (its TTL is the GCRA
        // window) outlives the workload and is there to be scanned.
        rate: Some((1.0, 1_000)),
        ..Options::default()
    };
    let app = TestApp::spawn(&db, opts).await;
    let (_, owner) = app.owner("o").await;
    let (agent, agent_key) = app.agent(&owner, "a").await;
    let token = app
        .post("/v1/sessions", &agent_key, json!({}))
        .await
        .str("token");
    let from = app.wallet(&owner, &agent, "USD", 1_000).await;
    let to = app.wallet(&owner, &agent, "USD", 0).await;
    for i in 0..5 {
        assert_eq!(
            app.transfer(&token, &from, &to, 10, &format!("k-{i}"))
                .await
                .status,
            StatusCode::CREATED
        );
        for path in ["balance", "policy", "summary"] {
            assert_eq!(
                app.get(&format!("/v1/wallets/{from}/{path}"), &token)
                    .await
                    .status,
                StatusCode::OK
            );
        }
    }
    assert_eq!(
        app.get("/v1/notifications", &owner).await.status,
        StatusCode::OK
    );
    let lock = app
        .app
        .locks
        .acquire("job:name:keys-test", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(lock.is_some());

    let url = std::env::var("WAIAAS_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let ours = scan(&url, &format!("{}*", app.key_prefix)).await;
    for kind in [
        "wallet:balance:",
        "wallet:policy:",
        "auth:session:",
        "finance:summary:",
        "wallet:ownership:",
        "ratelimit:requests:",
        "lock:job:",
        "notifications:unread:",
    ] {
        assert!(
            ours.iter().any(|(k, _)| unprefixed(k).starts_with(kind)),
            "no {kind} key among {ours:?}"
        );
    }
    // Every key of the shared test server, ours and other tests' alike.
    let all = scan(&url, "*").await;
    for (key, ttl) in &all {
        // PTTL: -1 is a key without a TTL; 0 is one expiring this millisecond, -2 one gone
        // between the scan and the PTTL.
        assert!(*ttl >= 0 || *ttl == -2, "{key} has no TTL ({ttl})");
        assert!(
            is_valid_key(unprefixed(key)),
            "{key} does not follow {{module}}:{{entity}}:{{scope}}:{{id}}"
        );
    }
    app.stop().await;
}
