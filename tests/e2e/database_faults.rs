//! PostgreSQL failing under the service: a connection that breaks during COMMIT, pooled
//! connections killed by the server, a wallet locked for long, a statement that runs too
//! long, a server that goes away and comes back. Each is answered with a 503 and a code the
//! client can act on (never a 500), and the service serves again as soon as it can.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait as _, Database, DbBackend, Statement, TransactionTrait as _};
use waiaas_testkit::{PgServer, TestDb};
use waiaas_tests::{Options, Reply, TestApp};

fn no_redis() -> Options {
    Options {
        redis: false,
        ..Options::default()
    }
}

/// A 503 with this code and a `Retry-After`.
fn unavailable(r: &Reply, code: &str) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert_eq!(r.code(), code, "{:?}", r.body);
    assert!(
        r.headers.contains_key("retry-after"),
        "no Retry-After: {:?}",
        r.headers
    );
}

/// An owner, an agent, and two funded wallets of the agent.
async fn funded(app: &TestApp) -> (String, String, String, String) {
    let (_, owner) = app.owner("Acme").await;
    let (agent, agent_key) = app.agent(&owner, "buyer").await;
    let a = app.wallet(&owner, &agent, "USD", 1_000).await;
    let b = app.wallet(&owner, &agent, "USD", 0).await;
    (owner, agent_key, a, b)
}

async fn scalar(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap()
}

#[tokio::test]
async fn a_commit_whose_connection_breaks_is_an_outcome_unknown_that_the_same_key_resolves() {
    let db = TestDb::new().await;
    let (proxy, url) = waiaas_tests::proxied_database(&db).await;
    let app = TestApp::spawn_with(TestApp::settings_for(&url, &no_redis())).await;
    let (_, agent_key, a, b) = funded(&app).await;

    // The connection breaks right after COMMIT reaches the server: nobody can tell the
    // client whether the transfer happened. (Only on the connection that carried this
    // transfer's key: the events relay commits transactions of its own on other pooled
    // connections.)
    proxy.cut_after_both(b"commit-cut", b"COMMIT");
    let first = app.transfer(&agent_key, &a, &b, 250, "commit-cut").await;
    assert_eq!(proxy.cuts(), 1, "the COMMIT went through the proxy");
    unavailable(&first, "outcome_unknown");
    assert!(
        first.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("same Idempotency-Key"),
        "{:?}",
        first.body
    );

    // The retry with the same key tells the real outcome, and money moved exactly once.
    let retry = app.transfer(&agent_key, &a, &b, 250, "commit-cut").await;
    assert_eq!(retry.status, StatusCode::CREATED, "{:?}", retry.body);
    let again = app.transfer(&agent_key, &a, &b, 250, "commit-cut").await;
    assert_eq!(again.str("id"), retry.str("id"));
    let balance = app
        .get(&format!("/v1/wallets/{a}/balance"), &agent_key)
        .await;
    assert_eq!(balance.body["balance"], 750);
    assert_eq!(
        scalar(
            &db.db,
            "SELECT count(*) AS n FROM transactions WHERE idempotency_key = 'commit-cut'"
        )
        .await,
        1
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
async fn pooled_connections_the_server_killed_cost_no_request() {
    let db = TestDb::new().await;
    let mut settings = TestApp::settings(&db, &no_redis());
    settings.database.min_connections = 4;
    settings.database.max_connections = 4;
    let app = TestApp::spawn_with(settings).await;
    let (owner, _, a, _) = funded(&app).await;
    // Every connection of the pool is used once, so all are idle in the pool now.
    let path = format!("/v1/wallets/{a}/balance");
    let warm = (0..8).map(|_| app.get(&path, &owner));
    for r in futures::future::join_all(warm).await {
        assert_eq!(r.status, StatusCode::OK);
    }
    let admin = Database::connect(waiaas_testkit::admin_url().await.unwrap())
        .await
        .unwrap();
    let killed = scalar(
        &admin,
        &format!(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name
        ),
    )
    .await;
    assert!(killed >= 4, "{killed} connections killed");
    for i in 0..10 {
        let r = app.get(&format!("/v1/wallets/{a}/balance"), &owner).await;
        assert_eq!(r.status, StatusCode::OK, "request {i}: {:?}", r.body);
    }
    admin.close().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn a_wallet_locked_for_long_answers_wallet_busy_and_blocks_neither_reads_nor_readiness() {
    let db = TestDb::new().await;
    let mut settings = TestApp::settings(&db, &no_redis());
    settings.database.max_connections = 4;
    settings.database.lock_timeout_ms = 2_000;
    // Reads share the connections writers may not take with the instance's own background
    // work (relay, sealer, sweeper, gauges); on a machine busy with the rest of the suite one
    // of those can hold a connection past a 1 s acquire timeout (seen once in a full run),
    // which says nothing about the locked wallet.
    settings.database.acquire_timeout_ms = 3_000;
    let app = TestApp::spawn_with(settings).await;
    let (owner, agent_key, a, b) = funded(&app).await;
    let (_, other_owner) = app.owner("Other").await;
    let (other_agent, _) = app.agent(&other_owner, "x").await;
    let other_wallet = app.wallet(&other_owner, &other_agent, "USD", 10).await;

    // Someone holds wallet a's row lock, far longer than the lock timeout.
    let holder = db.db.begin().await.unwrap();
    holder
        .execute_unprepared(&format!(
            "SELECT 1 FROM wallets WHERE id = '{a}' FOR UPDATE"
        ))
        .await
        .unwrap();

    let blocked = (0..6).map(|i| {
        let (app, key, a, b) = (&app, &agent_key, &a, &b);
        async move { app.transfer(key, a, b, 1, &format!("busy-{i}")).await }
    });
    let reads = async {
        // While the postings wait for the lock, other work is served.
        let mut replies = Vec::new();
        for _ in 0..6 {
            replies.push(app.call(Method::GET, "/readyz", None, None, None).await);
            replies.push(
                app.get(&format!("/v1/wallets/{other_wallet}/balance"), &other_owner)
                    .await,
            );
            replies.push(app.get("/v1/agents", &owner).await);
        }
        replies
    };
    let (busy, reads) = tokio::join!(futures::future::join_all(blocked), reads);
    // Each gave up: at the lock timeout (`wallet_busy`), or, while every connection writers
    // may use was taken by the others, at the pool's acquire timeout.
    for r in &busy {
        let code = r.code();
        unavailable(
            r,
            if code == "wallet_busy" {
                "wallet_busy"
            } else {
                "database_unavailable"
            },
        );
    }
    assert!(busy.iter().any(|r| r.code() == "wallet_busy"));
    for r in &reads {
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }

    holder.rollback().await.unwrap();
    let after = app.transfer(&agent_key, &a, &b, 1, "busy-0").await;
    assert_eq!(
        after.status,
        StatusCode::CREATED,
        "a wallet_busy request took no effect; its retry posts: {:?}",
        after.body
    );
    app.stop().await;
}

#[tokio::test]
async fn a_statement_past_its_timeout_is_a_503_timeout() {
    let db = TestDb::new().await;
    let mut settings = TestApp::settings(&db, &no_redis());
    settings.database.statement_timeout_ms = 300;
    settings.database.lock_timeout_ms = 0;
    let app = TestApp::spawn_with(settings).await;
    let (owner, _, a, _) = funded(&app).await;
    let holder = db.db.begin().await.unwrap();
    holder
        .execute_unprepared("LOCK TABLE wallets IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let r = app.get(&format!("/v1/wallets/{a}/balance"), &owner).await;
    unavailable(&r, "timeout");
    holder.rollback().await.unwrap();
    let r = app.get(&format!("/v1/wallets/{a}/balance"), &owner).await;
    assert_eq!(r.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_database_that_goes_away_is_a_503_and_the_service_serves_again_when_it_is_back() {
    let mut pg = PgServer::start(&[]).await.unwrap();
    let url = pg.migrated_database("waiaas").await.unwrap();
    let mut settings = TestApp::settings_for(&url, &no_redis());
    settings.database.connect_timeout_ms = 500;
    settings.database.acquire_timeout_ms = 1_000;
    let app = TestApp::spawn_with(settings).await;
    let (owner, _, a, _) = funded(&app).await;

    pg.stop().await;
    for _ in 0..5 {
        let r = app.get(&format!("/v1/wallets/{a}/balance"), &owner).await;
        unavailable(&r, "database_unavailable");
    }
    let ready = app.call(Method::GET, "/readyz", None, None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);

    pg.start_again().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = app.get(&format!("/v1/wallets/{a}/balance"), &owner).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.body["balance"], 1_000);
            break;
        }
        unavailable(&r, "database_unavailable");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the service never served again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_full_server_is_not_flooded_with_connection_attempts() {
    let pg = PgServer::start(&[
        "max_connections=6",
        "superuser_reserved_connections=0",
        "log_connections=on",
    ])
    .await
    .unwrap();
    let url = pg.migrated_database("waiaas").await.unwrap();
    let settings = || {
        let mut s = TestApp::settings_for(&url, &no_redis());
        s.database.min_connections = 0;
        s.database.max_connections = 4;
        s.database.acquire_timeout_ms = 1_000;
        s.database.idle_timeout_ms = 200;
        s
    };
    let setup = TestApp::spawn_with(settings()).await;
    let (owner, _, _, _) = funded(&setup).await;
    setup.stop().await;
    // An instance whose connections have all gone idle and closed; then others take every
    // slot of the server.
    let app = TestApp::spawn_with(settings()).await;
    let pool = app.app.db.get_postgres_connection_pool().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pool.size() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "idle connections never closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut hogs = Vec::new();
    loop {
        let mut opts = sea_orm::ConnectOptions::new(pg.url("waiaas"));
        opts.max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(2));
        match Database::connect(opts).await {
            Ok(c) if c.execute_unprepared("SELECT 1").await.is_ok() => hogs.push(c),
            _ => break,
        }
        assert!(
            hogs.len() <= 6,
            "the server took more than its max_connections"
        );
    }
    let attempts = |log: &str| log.matches("connection received").count();
    let before = attempts(&pg.log());
    // Eight clients keep asking for three seconds (a window of load, not a measured time).
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let client = |_| async {
        let mut asked = 0;
        while tokio::time::Instant::now() < until {
            let r = app.get("/v1/agents", &owner).await;
            if r.status != StatusCode::OK {
                unavailable(&r, "database_unavailable");
            }
            asked += 1;
        }
        asked
    };
    let requests: usize = futures::future::join_all((0..8).map(client))
        .await
        .into_iter()
        .sum();
    let made = attempts(&pg.log()) - before;
    eprintln!("{made} connection attempts for {requests} requests");
    assert!(
        made < requests,
        "{made} connection attempts for {requests} requests: requests try to connect instead of backing off"
    );
    drop(hogs);
    app.stop().await;
}
