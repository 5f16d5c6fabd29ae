//! The runbook of docs/operations.md, run: a base backup and WAL archiving of a private
//! cluster under load, a mistaken deletion, a restore to the moment before it
//! (`scripts/pitr`), `waiaas cache flush`, `reconcile` and `verify` clean, and the service
//! serving from the restored PostgreSQL with the Redis that saw the future: no balance,
//! session or key from after the restore point is served.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;
use waiaas_testkit::{PgServer, RedisServer, text_of};
use waiaas_tests::{Options, TestApp};

fn pitr(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pitr");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .expect("scripts/pitr");
    assert!(
        out.status.success(),
        "scripts/pitr {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn balance(app: &TestApp, wallet: &str, key: &str) -> i64 {
    let r = app.get(&format!("/v1/wallets/{wallet}/balance"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["balance"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_to_before_a_mistake_serves_nothing_from_after_it() {
    let mut pg = PgServer::start(&[]).await.expect("a private PostgreSQL");
    let archive = pg.scratch_dir_for_server("wal-archive").unwrap();
    let admin = Database::connect(pg.url("postgres")).await.unwrap();
    for sql in [
        "ALTER SYSTEM SET archive_mode = 'on'".to_owned(),
        format!(
            "ALTER SYSTEM SET archive_command = 'cp %p {}/%f'",
            archive.display()
        ),
    ] {
        admin.execute_unprepared(&sql).await.unwrap();
    }
    admin.close().await.unwrap();
    pg.start_again()
        .await
        .expect("restarted with WAL archiving");
    let url = pg.migrated_database("dr").await.unwrap();
    let redis = RedisServer::start().await.unwrap();
    let settings = TestApp::settings_for(
        &url,
        &Options {
            redis_url: Some(redis.url()),
            ..Options::default()
        },
    );

    let app = TestApp::spawn_with(settings.clone()).await;
    let (_, owner) = app.owner("Acme").await;
    let (buyer, buyer_key) = app.agent(&owner, "buyer").await;
    let (other, other_key) = app.agent(&owner, "other").await;
    let a = app.wallet(&owner, &buyer, "USD", 1_000).await;
    let b = app.wallet(&owner, &buyer, "USD", 0).await;
    let c = app.wallet(&owner, &other, "USD", 1_000).await;
    let d = app.wallet(&owner, &other, "USD", 0).await;
    for i in 0..10 {
        let r = app
            .transfer(&buyer_key, &a, &b, 10, &format!("before-{i}"))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let backup = pg.scratch_dir_for_server("base-backup").unwrap();
    pitr(&[
        "backup",
        "127.0.0.1",
        &pg.port().to_string(),
        &backup.display().to_string(),
    ]);
    // After the backup: replayed from the archive.
    for i in 0..5 {
        let r = app
            .transfer(&buyer_key, &a, &b, 10, &format!("after-backup-{i}"))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = app.transfer(&other_key, &c, &d, 7, &format!("c-{i}")).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    assert_eq!(balance(&app, &b, &buyer_key).await, 150);
    assert_eq!(balance(&app, &d, &other_key).await, 35);
    let db = Database::connect(url.as_str()).await.unwrap();
    let good = text_of(&db, "SELECT now()::text AS v").await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    // The mistake, and what followed it: the buyer agent deleted, more transfers, a new key,
    // a new session, each read back so Redis holds their newer versions.
    let r = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/agents/{buyer}"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    for i in 0..3 {
        let r = app
            .transfer(&other_key, &c, &d, 100, &format!("late-{i}"))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    assert_eq!(balance(&app, &d, &other_key).await, 335);
    let late_key = app
        .post(&format!("/v1/agents/{other}/keys"), &owner, json!({}))
        .await
        .str("api_key");
    assert_eq!(balance(&app, &d, &late_key).await, 335);
    let late_session = app
        .post("/v1/sessions", &owner, json!({}))
        .await
        .str("token");
    assert_eq!(
        app.get("/v1/agents", &late_session).await.status,
        StatusCode::OK
    );
    let segment = text_of(&db, "SELECT pg_walfile_name(pg_switch_wal()) AS v").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while text_of(
        &db,
        &format!("SELECT (COALESCE(last_archived_wal, '') >= '{segment}')::text AS v FROM pg_stat_archiver"),
    )
    .await
        != "true"
    {
        assert!(Instant::now() < deadline, "the WAL was never archived:\n{}", pg.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    db.close().await.unwrap();
    app.stop().await;

    // The runbook: stop, restore to before the mistake, start, flush the cache, check.
    let started = Instant::now();
    pg.stop().await;
    pitr(&[
        "restore",
        &backup.display().to_string(),
        &archive.display().to_string(),
        &good,
        &pg.data_dir().display().to_string(),
    ]);
    pg.start_again().await.expect("the restored cluster starts");
    let db = Database::connect(url.as_str()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while text_of(&db, "SELECT pg_is_in_recovery()::text AS v").await != "false" {
        assert!(
            Instant::now() < deadline,
            "the restore never promoted:\n{}",
            pg.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = started.elapsed();
    let size = text_of(&db, "SELECT pg_size_pretty(pg_database_size('dr')) AS v").await;
    eprintln!("restored a {size} database to a point in time in {recovered:?}");
    waiaas_app::commands::cache(&settings, true)
        .await
        .expect("waiaas cache flush");
    assert!(waiaas_app::commands::reconcile(&settings).await.unwrap());
    assert!(waiaas_app::commands::verify(&settings, None).await.unwrap());

    // Serving again, from the restored database, with the Redis that saw the future.
    let app = TestApp::spawn_with(settings.clone()).await;
    assert_eq!(
        balance(&app, &b, &buyer_key).await,
        150,
        "the buyer is back"
    );
    assert_eq!(balance(&app, &a, &buyer_key).await, 850);
    assert_eq!(
        balance(&app, &d, &other_key).await,
        35,
        "no balance from after"
    );
    assert_eq!(balance(&app, &c, &other_key).await, 965);
    let agent = app.get(&format!("/v1/agents/{buyer}"), &owner).await;
    assert_eq!(agent.str("status"), "active", "{:?}", agent.body);
    assert_eq!(
        app.get("/v1/agents", &late_key).await.status,
        StatusCode::UNAUTHORIZED,
        "a key from after the restore point"
    );
    assert_eq!(
        app.get("/v1/agents", &late_session).await.status,
        StatusCode::UNAUTHORIZED,
        "a session from after the restore point"
    );
    let r = app.transfer(&buyer_key, &a, &b, 10, "after-restore").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(balance(&app, &b, &buyer_key).await, 160);
    app.stop().await;
    drop(redis);
}
