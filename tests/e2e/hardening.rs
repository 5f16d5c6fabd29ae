//! The promises a hostile client or an unlucky one tests: a retry always gets the first
//! answer, money never gets stuck in a deleted agent's wallet, a block-list cannot be dodged
//! by spelling, odd input is a 400, a retry repairs a cache its first attempt left stale, and
//! a credential that ends ends everywhere, its live streams too.

use std::time::Duration;

use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use serde_json::{Value, json};
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, Reply, TestApp};

async fn post_keyed(app: &TestApp, path: &str, token: &str, body: Value, key: &str) -> Reply {
    app.call(Method::POST, path, Some(token), Some(body), Some(key))
        .await
}

async fn pay(app: &TestApp, agent_key: &str, wallet: &str, to: &str, key: &str) -> Reply {
    post_keyed(
        app,
        &format!("/v1/wallets/{wallet}/transfers"),
        agent_key,
        json!({ "amount": 1, "destination": to }),
        key,
    )
    .await
}

async fn balance(app: &TestApp, token: &str, wallet: &str) -> i64 {
    app.get(&format!("/v1/wallets/{wallet}/balance"), token)
        .await
        .body["balance"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_retry_gets_the_first_answer_whatever_changed_since() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, agent_key) = app.agent(&owner, "buyer").await;
    let a = app.wallet(&owner, &agent, "USD", 1_000).await;
    let b = app.wallet(&owner, &agent, "USD", 0).await;

    let first = app.transfer(&agent_key, &a, &b, 100, "k-1").await;
    assert_eq!(first.status, StatusCode::CREATED);
    let suspended = app
        .call(
            Method::PATCH,
            &format!("/v1/agents/{agent}"),
            Some(&owner),
            Some(json!({ "status": "suspended" })),
            None,
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{:?}", suspended.body);
    // The transfer happened: its retry says so, though the agent may no longer move money.
    let retry = app.transfer(&agent_key, &a, &b, 100, "k-1").await;
    assert_eq!(retry.status, StatusCode::CREATED, "{:?}", retry.body);
    assert_eq!(retry.str("id"), first.str("id"));
    let new = app.transfer(&agent_key, &a, &b, 100, "k-2").await;
    assert_eq!(new.code(), "agent_not_active");
    assert_eq!(balance(&app, &owner, &a).await, 900, "moved once");

    // Deposits need a key, and replay too, even once the wallet has closed.
    let keyless = app
        .post(
            &format!("/v1/wallets/{a}/deposits"),
            &owner,
            json!({ "amount": 5 }),
        )
        .await;
    assert_eq!(
        (keyless.status, keyless.code().as_str()),
        (StatusCode::BAD_REQUEST, "missing_idempotency_key")
    );
    let path = format!("/v1/wallets/{a}/deposits");
    let deposit = post_keyed(&app, &path, &owner, json!({ "amount": 5 }), "d-1").await;
    assert_eq!(deposit.status, StatusCode::CREATED);
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/agents/{agent}"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let again = post_keyed(&app, &path, &owner, json!({ "amount": 5 }), "d-1").await;
    assert_eq!(
        (again.status, again.str("id")),
        (StatusCode::CREATED, deposit.str("id"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_agents_wallet_takes_no_money_in_and_its_owner_sweeps_it_out() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (leaving, _) = app.agent(&owner, "leaving").await;
    let (staying, staying_key) = app.agent(&owner, "staying").await;
    let closed = app.wallet(&owner, &leaving, "USD", 700).await;
    let open = app.wallet(&owner, &staying, "USD", 300).await;
    let euros = app.wallet(&owner, &staying, "EUR", 0).await;
    let (_, stranger) = app.owner("Other").await;
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/agents/{leaving}"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let deposit = post_keyed(
        &app,
        &format!("/v1/wallets/{closed}/deposits"),
        &owner,
        json!({ "amount": 5 }),
        "d-closed",
    )
    .await;
    assert_eq!(
        (deposit.status, deposit.code().as_str()),
        (StatusCode::CONFLICT, "wallet_closed")
    );
    let transfer_in = app
        .transfer(&staying_key, &open, &closed, 10, "t-closed")
        .await;
    assert_eq!(
        (transfer_in.status, transfer_in.code().as_str()),
        (StatusCode::CONFLICT, "wallet_closed")
    );

    let sweep = |to: &str, key: &str, token: &str| {
        let (path, body) = (
            format!("/v1/wallets/{closed}/sweep"),
            json!({ "to_wallet_id": to }),
        );
        let (key, token) = (key.to_owned(), token.to_owned());
        let app = &app;
        async move { post_keyed(app, &path, &token, body, &key).await }
    };
    assert_eq!(
        sweep(&open, "s-x", &stranger).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        sweep(&euros, "s-eur", &owner).await.code(),
        "asset_mismatch"
    );
    assert_eq!(
        sweep(&closed, "s-self", &owner).await.status,
        StatusCode::BAD_REQUEST
    );
    let keyless = app
        .post(
            &format!("/v1/wallets/{closed}/sweep"),
            &owner,
            json!({ "to_wallet_id": open }),
        )
        .await;
    assert_eq!(keyless.code(), "missing_idempotency_key");
    let swept = sweep(&open, "s-1", &owner).await;
    assert_eq!(swept.status, StatusCode::CREATED, "{:?}", swept.body);
    assert_eq!(
        (swept.str("kind"), swept.body["amount"].as_i64()),
        ("sweep".to_owned(), Some(700))
    );
    assert_eq!(balance(&app, &owner, &closed).await, 0);
    assert_eq!(balance(&app, &owner, &open).await, 1_000);
    let replay = sweep(&open, "s-1", &owner).await;
    assert_eq!(
        (replay.status, replay.str("id")),
        (StatusCode::CREATED, swept.str("id"))
    );
    assert_eq!(sweep(&open, "s-2", &owner).await.code(), "nothing_to_sweep");
    let audit = app
        .get(
            &format!("/v1/audit-logs?resource_type=wallet&resource_id={closed}"),
            &owner,
        )
        .await;
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "wallet.sweep"),
        "{:?}",
        audit.body
    );
    assert!(
        waiaas_postgres::reconcile(&db.db)
            .await
            .unwrap()
            .is_consistent()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_block_list_cannot_be_dodged_by_case_width_or_invisible_characters() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, agent_key) = app.agent(&owner, "buyer").await;
    let w = app.wallet(&owner, &agent, "USD", 1_000).await;
    let policy = app
        .call(
            Method::PUT,
            &format!("/v1/wallets/{w}/policy"),
            Some(&owner),
            Some(json!({ "blocked_destinations": ["evil-corp"] })),
            None,
        )
        .await;
    assert_eq!(policy.status, StatusCode::OK, "{:?}", policy.body);
    for (i, spelling) in ["evil-corp", "EVIL-CORP", "Evil-Corp", "ｅｖｉｌ-corp"]
        .iter()
        .enumerate()
    {
        let r = pay(&app, &agent_key, &w, spelling, &format!("p-{i}")).await;
        assert_eq!(
            (r.status, r.body["error"]["rule"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("blocked_destinations")
            ),
            "{spelling}: {:?}",
            r.body
        );
    }
    for (i, sneaky) in [
        "evil-corp\u{200B}",
        "\u{FEFF}evil-corp",
        "evil\u{202E}proc-",
    ]
    .iter()
    .enumerate()
    {
        let r = pay(&app, &agent_key, &w, sneaky, &format!("s-{i}")).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{sneaky:?}: {:?}",
            r.body
        );
    }
    let named = app
        .post(
            "/v1/agents",
            &owner,
            json!({ "name": "bot\u{202E}gnp.exe" }),
        )
        .await;
    assert_eq!(named.status, StatusCode::BAD_REQUEST, "{:?}", named.body);
    let listed = app
        .call(
            Method::PUT,
            &format!("/v1/wallets/{w}/policy"),
            Some(&owner),
            Some(json!({ "blocked_destinations": ["evil\u{200B}corp"] })),
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::BAD_REQUEST, "{:?}", listed.body);
    // A list is counted as written: 1001 copies of one entry are over the limit of 1000, as
    // the OpenAPI document's `maxItems` says.
    let long = app
        .call(
            Method::PUT,
            &format!("/v1/wallets/{w}/policy"),
            Some(&owner),
            Some(json!({ "blocked_destinations": vec!["evil-corp"; 1001] })),
            None,
        )
        .await;
    assert_eq!(
        (long.status, long.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_policy")
    );
    assert_eq!(balance(&app, &owner, &w).await, 1_000, "nothing got out");
    app.stop().await;
}

#[tokio::test]
async fn nul_characters_and_impossible_cursors_are_a_400_and_a_huge_spend_is_reported_capped() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, agent_key) = app.agent(&owner, "buyer").await;
    let w = app.wallet(&owner, &agent, "USD", 1_000).await;
    let r = post_keyed(
        &app,
        &format!("/v1/wallets/{w}/transfers"),
        &agent_key,
        json!({ "amount": 1, "destination": "shop", "metadata": { "note": "a\u{0}b" } }),
        "nul",
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_metadata")
    );
    // Numbers at the ends of what a double holds are stored and read back: PostgreSQL writes
    // them out in full, and every digit is read back exactly (it was a 500).
    let r = post_keyed(
        &app,
        &format!("/v1/wallets/{w}/deposits"),
        &owner,
        serde_json::from_str(
            r#"{"amount": 1, "metadata": {"big": 1.7976931348623157e308, "tiny": 5e-324, "neg": -1.7976931348623157e308}}"#,
        )
        .unwrap(),
        "extreme-numbers",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["metadata"]["big"].as_f64(), Some(f64::MAX));
    let id = r.body["id"].as_str().unwrap().to_owned();
    let read = app.get(&format!("/v1/transactions/{id}"), &owner).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert_eq!(read.body["metadata"]["tiny"].as_f64(), Some(5e-324));
    let r = app.get("/v1/audit-logs?resource_type=%00", &owner).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let id = uuid::Uuid::now_v7();
    let r = app
        .get(
            &format!("/v1/wallets/{w}/transactions?cursor=-8000000000000000000_{id}"),
            &owner,
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_cursor")
    );
    // A well-shaped cursor beyond the year 9999 starts after every transaction: a page.
    let r = app
        .get(
            &format!("/v1/wallets/{w}/transactions?cursor=999999999999999999_{id}"),
            &owner,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // A whole number is taken in any spelling JSON Schema counts as an integer; a fraction is not.
    for (amount, status) in [
        ("1.0", StatusCode::CREATED),
        ("1e0", StatusCode::CREATED),
        ("1.5", StatusCode::BAD_REQUEST),
    ] {
        let r = post_keyed(
            &app,
            &format!("/v1/wallets/{w}/deposits"),
            &owner,
            serde_json::from_str(&format!("{{\"amount\": {amount}}}")).unwrap(),
            &format!("spelled-{amount}"),
        )
        .await;
        assert_eq!(r.status, status, "{amount}: {:?}", r.body);
    }

    // Two days of this month at the largest amount a day holds: the month's true total is
    // beyond 64 bits, and is reported as capped, not as an error.
    let today = chrono::Utc::now().date_naive();
    for day in [today, today - chrono::Duration::days(1)] {
        if day.format("%Y-%m").to_string() != today.format("%Y-%m").to_string() {
            continue;
        }
        db.db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO wallet_daily_spend (wallet_id, day, amount, count) VALUES ($1::uuid, $2, 9223372036854775807, 1)",
                [w.clone().into(), day.into()],
            ))
            .await
            .unwrap();
    }
    let s = app.get(&format!("/v1/wallets/{w}/summary"), &owner).await;
    assert_eq!(s.status, StatusCode::OK, "{:?}", s.body);
    assert_eq!(
        (
            s.body["month"]["spent"].as_i64(),
            s.body["month"]["capped"].as_bool(),
            s.body["today"]["capped"].as_bool(),
        ),
        (Some(i64::MAX), Some(true), Some(true)),
        "{:?}",
        s.body
    );
    app.stop().await;
}

#[tokio::test]
async fn a_replay_repairs_a_balance_the_first_attempt_left_stale_in_redis() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, agent_key) = app.agent(&owner, "buyer").await;
    let a = app.wallet(&owner, &agent, "USD", 1_000).await;
    let b = app.wallet(&owner, &agent, "USD", 0).await;
    // Reading the balance fills the cache.
    assert_eq!(balance(&app, &agent_key, &a).await, 1_000);
    let t = app.transfer(&agent_key, &a, &b, 100, "k-lost").await;
    assert_eq!(t.status, StatusCode::CREATED);

    // The first attempt's cache step was lost (its client went away before the fix, or an
    // operator restored an old entry): Redis holds the balance from before the transfer, at
    // the current epoch and an older version.
    let key = format!("{}wallet:balance:wallet:{a}", app.key_prefix);
    let stale =
        json!({ "wallet_id": a, "asset": "USD", "balance": 1_000, "held": 0, "version": 2 });
    let redis = std::env::var("WAIAAS_TEST_REDIS_URL").unwrap();
    let redis_cli = async |args: &[&str]| {
        let out = tokio::process::Command::new("redis-cli")
            .args(["-u", &redis])
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // The transfer's write-through may still be on its way (it follows the answer): it must
    // land before the stale entry is put back, or it overwrites it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while redis_cli(&["HGET", &key, "v"]).await == "2" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the transfer's write-through never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Put back until this instance serves it: a read it answers from PostgreSQL meanwhile (its
    // lease lapsed under a loaded machine, or the epoch moved on) does not show the damage.
    loop {
        let epoch: i64 = db
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT epoch FROM cache_epoch WHERE id = 1",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "epoch")
            .unwrap();
        let epoch = epoch.to_string();
        let stale = stale.to_string();
        redis_cli(&["HSET", &key, "e", &epoch, "v", "2", "t", "0", "d", &stale]).await;
        if balance(&app, &agent_key, &a).await == 1_000 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stale entry is never served (the damage the retry must repair)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let retry = app.transfer(&agent_key, &a, &b, 100, "k-lost").await;
    assert_eq!(retry.str("id"), t.str("id"));
    assert_eq!(
        balance(&app, &agent_key, &a).await,
        900,
        "the replay wrote the current balance through"
    );
    app.stop().await;
}

/// Reads an event stream until it ends; panics if it outlives `limit` or carries `forbidden`.
async fn ends_without(stream: reqwest::Response, forbidden: &str, limit: Duration) {
    let mut body = stream.bytes_stream();
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = String::new();
    loop {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Some(Err(_)) | None) => break,
            Err(_) => panic!("the stream outlived its credential: {seen}"),
        }
        assert!(
            !seen.contains(forbidden),
            "an event reached a revoked credential: {seen}"
        );
    }
}

#[tokio::test]
async fn live_streams_end_with_their_session_or_their_agent() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, agent_key) = app.agent(&owner, "buyer").await;
    let a = app.wallet(&owner, &agent, "USD", 1_000).await;
    let b = app.wallet(&owner, &agent, "USD", 0).await;
    let open = |token: String| {
        let (client, url) = (
            app.client.clone(),
            format!("{}/v1/wallets/{a}/events", app.base),
        );
        async move {
            let r = client.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r
        }
    };

    // A session's stream ends when the session is revoked.
    let session = app
        .post("/v1/sessions", &agent_key, json!({}))
        .await
        .str("token");
    let stream = open(session.clone()).await;
    let revoked = app
        .call(
            Method::DELETE,
            "/v1/sessions/current",
            Some(&session),
            None,
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let after = app.transfer(&agent_key, &a, &b, 1, "after-revoke").await;
    assert_eq!(after.status, StatusCode::CREATED);
    ends_without(stream, &after.str("id"), Duration::from_secs(20)).await;

    // An API key's stream ends when its agent is deleted.
    let stream = open(agent_key.clone()).await;
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/agents/{agent}"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let deposit = post_keyed(
        &app,
        &format!("/v1/wallets/{a}/deposits"),
        &owner,
        json!({ "amount": 1 }),
        "after-delete",
    )
    .await;
    assert_eq!(deposit.code(), "wallet_closed");
    ends_without(stream, "after-delete", Duration::from_secs(20)).await;
    app.stop().await;
}

#[tokio::test]
async fn an_address_that_keeps_failing_authentication_is_refused_before_any_lookup() {
    let db = TestDb::new().await;
    let mut settings = TestApp::settings(&db, &Options::default());
    settings.rate_limit.enabled = true;
    settings.rate_limit.auth_failures_per_second = 0.5;
    settings.rate_limit.auth_failures_burst = 3;
    let app = TestApp::spawn_with(settings).await;
    let (_, owner) = app.owner("Acme").await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let guess = format!("wak_{i:0>40}");
        statuses.push(app.get("/v1/agents", &guess).await);
    }
    assert_eq!(statuses[0].status, StatusCode::UNAUTHORIZED);
    let limited = statuses
        .iter()
        .find(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .expect("the guessing address was never limited");
    assert!(limited.headers.contains_key("retry-after"));
    // While it is limited, even a valid credential from it waits: nothing is looked up.
    let r = app.get("/v1/agents", &owner).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Health probes take no credential and are never refused for it.
    let probe = app.call(Method::GET, "/healthz", None, None, None).await;
    assert_eq!(probe.status, StatusCode::OK);
    app.stop().await;
}

/// A GET with a bearer token and `X-Forwarded-For`.
async fn get_from(app: &TestApp, path: &str, token: &str, forwarded: &str) -> StatusCode {
    app.client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("x-forwarded-for", forwarded)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_audited_and_limited_and_from_anyone_else_ignored()
 {
    let db = TestDb::new().await;
    let limited = |trusted: Vec<String>| {
        let mut s = TestApp::settings(&db, &Options::default());
        s.rate_limit.enabled = true;
        s.rate_limit.auth_failures_per_second = 0.1;
        s.rate_limit.auth_failures_burst = 2;
        s.server.trusted_proxies = trusted;
        s
    };
    // The test's own connection (127.0.0.1) plays the proxy.
    let proxied = TestApp::spawn_with(limited(vec!["127.0.0.0/8".to_owned()])).await;
    let (_, owner) = proxied.owner("Acme").await;
    // The owner's key, created through the proxy for 203.0.113.7 (the client prepended an
    // address of its own: ignored, only the proxy's hop counts).
    let r = proxied
        .client
        .post(format!("{}/v1/agents", proxied.base))
        .bearer_auth(&owner)
        .header("x-forwarded-for", "192.0.2.66, 203.0.113.7")
        .json(&json!({ "name": "forwarded" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let audit = proxied
        .get("/v1/audit-logs?resource_type=agent", &owner)
        .await;
    assert_eq!(
        audit.body["items"][0]["ip"], "203.0.113.7",
        "{:?}",
        audit.body
    );
    // One address guessing is limited; another behind the same proxy is not.
    let guess = format!("wak_{:0>40}", 7);
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(get_from(&proxied, "/v1/agents", &guess, "198.51.100.1").await);
    }
    assert!(
        codes.contains(&StatusCode::TOO_MANY_REQUESTS),
        "the guessing address was never limited: {codes:?}"
    );
    assert_eq!(
        get_from(&proxied, "/v1/agents", &owner, "198.51.100.2").await,
        StatusCode::OK,
        "a neighbour behind the same proxy paid for the guesses"
    );
    assert_eq!(
        get_from(&proxied, "/v1/agents", &owner, "198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    proxied.stop().await;

    // Without trusted proxies the header changes nothing: the peer is audited and limited.
    let direct = TestApp::spawn_with(limited(Vec::new())).await;
    let (_, owner) = direct.owner("Beta").await;
    let r = direct
        .client
        .post(format!("{}/v1/agents", direct.base))
        .bearer_auth(&owner)
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({ "name": "direct" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let audit = direct
        .get("/v1/audit-logs?resource_type=agent", &owner)
        .await;
    assert_eq!(
        audit.body["items"][0]["ip"], "127.0.0.1",
        "{:?}",
        audit.body
    );
    for i in 0..6 {
        get_from(&direct, "/v1/agents", &guess, &format!("198.51.100.{i}")).await;
    }
    assert_eq!(
        get_from(&direct, "/v1/agents", &owner, "198.51.100.200").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged X-Forwarded-For escaped the limit"
    );
    direct.stop().await;
}
