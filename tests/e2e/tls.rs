//! TLS everywhere, with certificates made at test time: PostgreSQL (`sslmode` up to
//! `verify-full`, never falling back to plain text once TLS is required), Redis (`rediss://`,
//! a CA of our own, client certificates; standalone, a cluster, and Sentinels through a
//! failover), and the service's own HTTPS listener — and the whole walkthrough over all
//! three at once.

use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use waiaas_postgres::PgSettings;
use waiaas_testkit::{PgServer, RedisCluster, RedisSentinels, RedisServer, TestCerts, TestDb};
use waiaas_tests::{Options, TestApp};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn tls_postgres(certs: &TestCerts) -> PgServer {
    let options = certs.postgres_options().unwrap();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    PgServer::start(&options)
        .await
        .expect("PostgreSQL with TLS")
}

async fn connect(
    url: &str,
    mode: &str,
    ca: Option<&std::path::Path>,
) -> Result<DatabaseConnection, String> {
    let settings = PgSettings {
        url: url.to_owned(),
        min_connections: 0,
        max_connections: 1,
        connect_timeout_ms: 10_000,
        sslmode: Some(mode.to_owned()),
        sslrootcert: ca.map(|p| p.display().to_string()),
        ..PgSettings::default()
    };
    waiaas_postgres::connect_for_maintenance(&settings)
        .await
        .map_err(|e| e.to_string())
}

/// Whether the connection in use is encrypted, as the server sees it.
async fn encrypted(db: &DatabaseConnection) -> bool {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<bool>("", "ssl").unwrap()
}

#[tokio::test]
async fn postgres_over_tls_checks_the_ca_and_the_host_and_never_falls_back_once_required() {
    let certs = TestCerts::generate().expect("openssl");
    let tls = tls_postgres(&certs).await;
    let plain = PgServer::start(&[]).await.unwrap();
    let by_name = tls.url("postgres").replace("127.0.0.1", "localhost");
    let by_address = tls.url("postgres");

    // verify-full: the CA signed it and it was issued for the host connected to.
    let db = connect(&by_name, "verify-full", Some(&certs.ca))
        .await
        .expect("verify-full to localhost");
    assert!(encrypted(&db).await);
    // The certificate names localhost only: by address, verify-full refuses it...
    let e = connect(&by_address, "verify-full", Some(&certs.ca))
        .await
        .expect_err("verify-full accepted a certificate issued for another name");
    assert!(e.contains("not valid for name"), "{e}");
    // ...and verify-ca, which checks only who signed it, accepts it.
    let db = connect(&by_address, "verify-ca", Some(&certs.ca))
        .await
        .expect("verify-ca by address");
    assert!(encrypted(&db).await);
    // Another CA: refused, by name as well.
    let e = connect(&by_name, "verify-full", Some(&certs.other_ca))
        .await
        .expect_err("a certificate from an unknown CA was accepted");
    assert!(e.contains("UnknownIssuer"), "{e}");
    // require: encrypted, whatever signed it; and a server without TLS is refused, never
    // spoken to in plain text.
    let db = connect(&by_address, "require", None)
        .await
        .expect("require");
    assert!(encrypted(&db).await);
    let e = connect(&plain.url("postgres"), "require", None)
        .await
        .expect_err("require fell back to plain text");
    assert!(e.to_lowercase().contains("tls"), "{e}");
    // prefer: TLS when offered, plain text otherwise; disable: plain text.
    assert!(encrypted(&connect(&by_address, "prefer", None).await.unwrap()).await);
    assert!(
        !encrypted(
            &connect(&plain.url("postgres"), "prefer", None)
                .await
                .unwrap()
        )
        .await
    );
    assert!(!encrypted(&connect(&by_address, "disable", None).await.unwrap()).await);
    // An unknown mode is refused before any connection is tried.
    let e = connect(&by_address, "verify-everything", None)
        .await
        .expect_err("an unknown sslmode");
    assert!(e.contains("verify-everything"), "{e}");
}

#[tokio::test]
async fn redis_over_tls_checks_the_ca_and_sends_a_client_certificate() {
    let certs = TestCerts::generate().expect("openssl");
    let port = free_port();
    let args = certs.redis_args(port, "yes");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _redis = RedisServer::start_with_args(&args)
        .await
        .expect("redis-server with TLS (Debian's build has it)");
    let config = |tls: waiaas_redis::RedisTls| {
        let mut c = waiaas_redis::RedisConfig::standalone(format!("rediss://localhost:{port}"));
        c.tls = Some(tls);
        c.connect_timeout = std::time::Duration::from_secs(2);
        c.command_timeout = std::time::Duration::from_secs(2);
        c
    };
    let good = waiaas_redis::RedisTls {
        ca_file: Some(certs.ca.clone()),
        cert_file: Some(certs.client_cert.clone()),
        key_file: Some(certs.client_key.clone()),
    };
    let redis = waiaas_redis::Redis::connect(&config(good.clone()))
        .await
        .unwrap();
    assert!(
        redis
            .wait_connected(std::time::Duration::from_secs(10))
            .await
    );
    redis.ping().await.expect("PING over TLS");
    let _ = redis.quit().await;

    // Another CA, or no client certificate where the server asks for one: never connected.
    for (what, tls) in [
        (
            "another CA",
            waiaas_redis::RedisTls {
                ca_file: Some(certs.other_ca.clone()),
                ..good.clone()
            },
        ),
        (
            "no client certificate",
            waiaas_redis::RedisTls {
                cert_file: None,
                key_file: None,
                ..good.clone()
            },
        ),
    ] {
        let redis = waiaas_redis::Redis::connect(&config(tls)).await.unwrap();
        assert!(
            !redis
                .wait_connected(std::time::Duration::from_secs(3))
                .await,
            "connected with {what}"
        );
        assert!(redis.ping().await.is_err(), "PING answered with {what}");
        let _ = redis.quit().await;
    }
    // A client certificate without its key is refused up front.
    let e = waiaas_redis::Redis::connect(&config(waiaas_redis::RedisTls {
        key_file: None,
        ..good
    }))
    .await
    .expect_err("a certificate without its key");
    assert!(format!("{e:#}").contains("go together"), "{e:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_walkthrough_runs_over_tls_to_postgres_redis_and_the_client() {
    let certs = TestCerts::generate().expect("openssl");
    let pg = tls_postgres(&certs).await;
    let url = pg
        .migrated_database("walk")
        .await
        .unwrap()
        .replace("127.0.0.1", "localhost");
    let port = free_port();
    let args = certs.redis_args(port, "yes");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _redis = RedisServer::start_with_args(&args).await.unwrap();

    let mut settings = TestApp::settings_for(
        &url,
        &Options {
            redis_url: Some(format!("rediss://localhost:{port}")),
            ..Options::default()
        },
    );
    settings.database.sslmode = Some("verify-full".to_owned());
    settings.database.sslrootcert = Some(certs.ca.display().to_string());
    settings.redis.tls_ca_file = Some(certs.ca.display().to_string());
    settings.redis.tls_cert_file = Some(certs.client_cert.display().to_string());
    settings.redis.tls_key_file = Some(certs.client_key.display().to_string());
    settings.server.tls_cert = Some(certs.server_cert.display().to_string());
    settings.server.tls_key = Some(certs.server_key.display().to_string());
    let settings = settings.validated().expect("TLS settings");
    let app = TestApp::spawn_tls(settings.clone(), &certs.ca).await;
    assert!(app.base.starts_with("https://"), "{}", app.base);
    let redis = app.app.redis.clone().expect("Redis enabled");
    assert!(
        redis
            .wait_connected(std::time::Duration::from_secs(10))
            .await,
        "the instance reached Redis over TLS"
    );
    assert!(
        encrypted(&app.app.db).await,
        "the instance's pool is encrypted"
    );

    crate::walkthrough::walk(&app, &settings).await;

    // A plain-HTTP client gets nothing from the HTTPS listener.
    let plain = reqwest::Client::new()
        .get(app.base.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
    app.stop().await;
}

#[tokio::test]
async fn waiaas_serve_answers_https_with_its_certificate() {
    let certs = TestCerts::generate().expect("openssl");
    let (name, url) = crate::serve_binary::new_database().await;
    let port = free_port();
    let mut child = crate::serve_binary::serve_without_redis(
        &url,
        port,
        &[
            (
                "WAIAAS__SERVER__TLS_CERT",
                certs.server_cert.display().to_string(),
            ),
            (
                "WAIAAS__SERVER__TLS_KEY",
                certs.server_key.display().to_string(),
            ),
        ],
    );
    let root = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .build()
        .unwrap();
    let ready =
        crate::serve_binary::wait_answering(&client, &format!("https://localhost:{port}/healthz"))
            .await;
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
    // A client that does not trust the CA never gets an answer.
    let stranger = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&certs.other_ca).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    assert!(
        stranger
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .is_err()
    );
    child.kill().await.unwrap();
    crate::serve_binary::drop_database(&name).await;
}

#[tokio::test]
async fn a_postgres_that_asks_for_a_client_certificate_gets_the_one_configured() {
    let certs = TestCerts::generate().expect("openssl");
    let hba = std::env::temp_dir().join(format!("waiaas-hba-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &hba,
        "hostssl all certuser 127.0.0.1/32 trust clientcert=verify-ca\n\
         host all certuser 127.0.0.1/32 reject\n\
         host all all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    let mut options = certs.postgres_options().unwrap();
    options.push(format!("hba_file={}", hba.display()));
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let pg = PgServer::start(&options)
        .await
        .expect("PostgreSQL with TLS");
    let admin = sea_orm::Database::connect(pg.url("postgres"))
        .await
        .unwrap();
    admin
        .execute_unprepared("CREATE ROLE certuser LOGIN")
        .await
        .unwrap();
    let url = pg
        .url("postgres")
        .replace("//postgres@127.0.0.1", "//certuser@localhost");
    let with = |cert: bool| PgSettings {
        url: url.clone(),
        min_connections: 0,
        max_connections: 1,
        connect_timeout_ms: 10_000,
        sslmode: Some("verify-full".to_owned()),
        sslrootcert: Some(certs.ca.display().to_string()),
        sslcert: cert.then(|| certs.client_cert.display().to_string()),
        sslkey: cert.then(|| certs.client_key.display().to_string()),
        ..PgSettings::default()
    };
    let e = waiaas_postgres::connect_for_maintenance(&with(false))
        .await
        .expect_err("connected without the client certificate the server asks for")
        .to_string();
    assert!(e.contains("certificate"), "{e}");
    let db = waiaas_postgres::connect_for_maintenance(&with(true))
        .await
        .expect("the client certificate is sent");
    assert!(encrypted(&db).await);
    let half = PgSettings {
        sslkey: None,
        ..with(true)
    };
    let e = waiaas_postgres::connect_for_maintenance(&half)
        .await
        .expect_err("a certificate without its key")
        .to_string();
    assert!(e.contains("go together"), "{e}");
    let _ = std::fs::remove_file(&hba);
}

/// The service's Redis settings for TLS with the test CA, in `mode` over `nodes`.
fn redis_tls_settings(
    db: &TestDb,
    certs: &TestCerts,
    mode: waiaas_app::settings::RedisMode,
    nodes: Vec<String>,
) -> waiaas_app::Settings {
    let mut settings = TestApp::settings(db, &Options::default());
    settings.redis.mode = mode;
    settings.redis.nodes = nodes;
    settings.redis.tls = true;
    settings.redis.tls_ca_file = Some(certs.ca.display().to_string());
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_caches_on_a_redis_cluster_over_tls() {
    let certs = TestCerts::generate().expect("openssl");
    let cluster = RedisCluster::start_tls(3, &certs)
        .await
        .expect("a three-master cluster speaking TLS");
    let db = TestDb::new().await;
    let settings = redis_tls_settings(
        &db,
        &certs,
        waiaas_app::settings::RedisMode::Cluster,
        cluster.tls_nodes(),
    );
    let app = TestApp::spawn_with(settings).await;
    let redis = app.app.redis.clone().expect("Redis enabled");
    assert!(
        redis.wait_connected(Duration::from_secs(10)).await,
        "the service reached the cluster over TLS"
    );
    let (_, owner) = app.owner("o").await;
    let (agent, key) = app.agent(&owner, "a").await;
    let a = app.wallet(&owner, &agent, "USD", 100).await;
    let b = app.wallet(&owner, &agent, "USD", 0).await;
    let t = app.transfer(&key, &a, &b, 30, "tls-cluster").await;
    assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
    for _ in 0..2 {
        let balance = app.get(&format!("/v1/wallets/{b}/balance"), &key).await;
        assert_eq!(
            balance.body["balance"],
            serde_json::json!(30),
            "{:?}",
            balance.body
        );
    }
    assert!(
        cluster.keys().await.unwrap() > 0,
        "the service cached nothing in the cluster"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_follows_a_sentinel_failover_over_tls() {
    let certs = TestCerts::generate().expect("openssl");
    let mut set = RedisSentinels::start_tls(&certs)
        .await
        .expect("a primary, a replica and three Sentinels speaking TLS");
    let db = TestDb::new().await;
    let mut settings = redis_tls_settings(
        &db,
        &certs,
        waiaas_app::settings::RedisMode::Sentinel,
        set.nodes(),
    );
    settings.redis.sentinel_service = Some("mymaster".to_owned());
    let app = TestApp::spawn_with(settings).await;
    let redis = app.app.redis.clone().expect("Redis enabled");
    assert!(
        redis.wait_connected(Duration::from_secs(10)).await,
        "the service reached the primary the Sentinels name, over TLS"
    );
    let (_, owner) = app.owner("o").await;
    let (agent, key) = app.agent(&owner, "a").await;
    let a = app.wallet(&owner, &agent, "USD", 100).await;
    let b = app.wallet(&owner, &agent, "USD", 0).await;
    assert_eq!(
        app.transfer(&key, &a, &b, 10, "before").await.status,
        StatusCode::CREATED
    );
    set.primary.kill();
    set.wait_promoted(Duration::from_secs(30))
        .await
        .expect("the Sentinels promoted the replica");
    // After the failover the service writes to the promoted server, reached over TLS at the
    // address the Sentinels announce: emptied now, it holds the service's keys again once
    // the service has followed (a wallet opened and read, the cache lease renewed).
    waiaas_testkit::raw_command(set.replica.port(), &["FLUSHALL"])
        .await
        .unwrap();
    let c = app.wallet(&owner, &agent, "USD", 5).await;
    waiaas_tests::wait_writes_reach(
        &app,
        set.replica.port(),
        Duration::from_secs(30),
        || async {
            let balance = app.get(&format!("/v1/wallets/{c}/balance"), &key).await;
            assert_eq!(balance.status, StatusCode::OK, "{:?}", balance.body);
        },
    )
    .await;
    assert_eq!(
        app.transfer(&key, &a, &b, 10, "after").await.status,
        StatusCode::CREATED
    );
    app.stop().await;
}
