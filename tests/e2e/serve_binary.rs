//! The `waiaas` binary itself: `serve` creates and migrates a missing database, answers, runs
//! degraded without Redis, and stops cleanly on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;

/// The binary built next to this test executable.
pub(crate) fn binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target dir");
    let bin = dir.join("waiaas");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace (cargo build --workspace)",
        bin.display()
    );
    bin
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A database on the test server that does not exist yet (`serve` and `demo` create it):
/// its name and URL.
pub(crate) async fn new_database() -> (String, String) {
    let admin = waiaas_testkit::admin_url()
        .await
        .expect("test database server");
    let name = format!("waiaas_t_{}", uuid::Uuid::new_v4().simple());
    let url = waiaas_testkit::with_database(&admin, &name);
    (name, url)
}

/// Drops a database [`new_database`] named, whoever is still connected.
pub(crate) async fn drop_database(name: &str) {
    let admin = waiaas_testkit::admin_url().await.unwrap();
    let admin = sea_orm::Database::connect(&admin).await.unwrap();
    let _ = sea_orm::ConnectionTrait::execute_unprepared(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await;
}

/// `waiaas serve` on `url` at `127.0.0.1:<port>`, without Redis, with `extra` settings.
pub(crate) fn serve_without_redis(
    url: &str,
    port: u16,
    extra: &[(&str, String)],
) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(binary());
    cmd.arg("serve")
        .env("WAIAAS__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("WAIAAS__DATABASE__URL", url)
        .env("WAIAAS__DATABASE__MIN_CONNECTIONS", "0")
        .env("WAIAAS__DATABASE__MAX_CONNECTIONS", "3")
        .env("WAIAAS__REDIS__ENABLED", "false")
        .env("WAIAAS_CONFIG_DIR", "/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("waiaas serve")
}

/// Waits until `url` answers at all.
pub(crate) async fn wait_answering(client: &reqwest::Client, url: &str) -> reqwest::Response {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(url).send().await {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn serve_creates_its_database_runs_without_redis_and_stops_on_sigterm() {
    let admin = waiaas_testkit::admin_url()
        .await
        .expect("test database server");
    let name = format!("waiaas_t_{}", uuid::Uuid::new_v4().simple());
    let url = waiaas_testkit::with_database(&admin, &name);
    let port = free_port();
    let dead_redis = free_port();
    let mut child = tokio::process::Command::new(binary())
        .arg("serve")
        .env("WAIAAS__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("WAIAAS__DATABASE__URL", &url)
        .env("WAIAAS__DATABASE__MIN_CONNECTIONS", "0")
        .env("WAIAAS__DATABASE__MAX_CONNECTIONS", "3")
        .env(
            "WAIAAS__REDIS__URL",
            format!("redis://127.0.0.1:{dead_redis}"),
        )
        .env("WAIAAS_CONFIG_DIR", "/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("waiaas serve");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let ready = loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "serve never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");

    let pid = i32::try_from(child.id().expect("pid")).unwrap();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("stops within the grace period")
        .unwrap();
    assert!(exit.success(), "{exit:?}");

    // serve created the database and migrated it: every migration is recorded there.
    let migrated = tokio::process::Command::new("psql")
        .args([
            url.as_str(),
            "-Atc",
            "SELECT count(*) FROM seaql_migrations",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        migrated.status.success(),
        "serve did not create and migrate its database: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&migrated.stdout).trim(),
        waiaas_migration::names().len().to_string(),
        "serve applied every migration"
    );
    let drop = tokio::process::Command::new("psql")
        .args([
            admin.as_str(),
            "-qc",
            &format!("DROP DATABASE {name} WITH (FORCE)"),
        ])
        .status()
        .await
        .unwrap();
    assert!(drop.success());
}

#[tokio::test]
async fn serve_says_at_once_that_postgresql_is_unreachable_and_keeps_trying() {
    use tokio::io::AsyncBufReadExt as _;
    let nothing_there = free_port();
    let mut child = tokio::process::Command::new(binary())
        .arg("serve")
        .env(
            "WAIAAS__SERVER__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env(
            "WAIAAS__DATABASE__URL",
            format!("postgres://postgres:s3cret@127.0.0.1:{nothing_there}/waiaas"),
        )
        .env("WAIAAS__REDIS__ENABLED", "false")
        .env("WAIAAS_CONFIG_DIR", "/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("waiaas serve");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while said.len() < 2 {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("serve said nothing about the unreachable database")
            .unwrap()
            .expect("serve exited instead of retrying");
        assert!(
            !line.contains('\u{1b}'),
            "colour codes in a log that is not a terminal: {line:?}"
        );
        assert!(!line.contains("s3cret"), "the password was logged: {line}");
        if line.contains("PostgreSQL unreachable") {
            said.push(line);
        }
    }
    assert!(
        said.iter().all(|l| l.contains("retry_in_s")),
        "each message says when it tries again: {said:?}"
    );
    let _ = child.kill().await;
}

async fn run(args: &[&str], envs: &[(&str, String)]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(binary());
    cmd.args(args).env("WAIAAS_CONFIG_DIR", "/nonexistent");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("waiaas ran");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn bootstrap_prints_a_working_key_and_cache_commands_touch_only_this_prefix() {
    let db = waiaas_testkit::TestDb::new().await;
    let prefix = waiaas_testkit::unique_prefix();
    let redis = std::env::var("WAIAAS_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let envs = [
        ("WAIAAS__DATABASE__URL", db.url.clone()),
        ("WAIAAS__DATABASE__MIN_CONNECTIONS", "0".to_owned()),
        ("WAIAAS__REDIS__URL", redis.clone()),
        ("WAIAAS__REDIS__KEY_PREFIX", prefix.clone()),
    ];
    let (ok, out) = run(&["bootstrap", "--name", "Acme"], &envs).await;
    assert!(ok, "{out}");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("api_key:"))
        .expect("an api_key line")
        .trim()
        .to_owned();
    let services = waiaas_testkit::services(&db.postgres());
    let (principal, _) = services
        .authenticate(&key)
        .await
        .expect("the printed key works");
    assert!(matches!(principal, waiaas_domain::Principal::Owner { .. }));

    // Keys of this prefix (and one of another prefix that must survive the flush).
    let other = waiaas_testkit::unique_prefix();
    for (p, k) in [
        (&prefix, "wallet:balance:wallet:1"),
        (&prefix, "wallet:policy:wallet:1"),
        (&other, "wallet:balance:wallet:1"),
    ] {
        let key = format!("{p}{k}");
        let status = tokio::process::Command::new("redis-cli")
            .args(["-u", &redis, "SET", &key, "x", "EX", "60"])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }
    let (ok, stats) = run(&["cache", "stats"], &envs).await;
    assert!(ok, "{stats}");
    let total = |text: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with("total"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .expect("a total line")
    };
    assert_eq!(total(&stats), 2, "{stats}");
    let (ok, flushed) = run(&["cache", "flush"], &envs).await;
    assert!(ok && total(&flushed) == 2, "{flushed}");
    // The flush ended the cache epoch: no instance serves an entry written before it.
    assert!(flushed.contains("cache epoch 1 ended"), "{flushed}");
    let dirty: bool = {
        use sea_orm::ConnectionTrait as _;
        db.db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT dirty FROM cache_epoch WHERE id = 1",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "dirty")
            .unwrap()
    };
    assert!(dirty, "the next lease renewal starts a new epoch");
    assert_eq!(total(&run(&["cache", "stats"], &envs).await.1), 0);
    let survivor = tokio::process::Command::new("redis-cli")
        .args([
            "-u",
            &redis,
            "EXISTS",
            &format!("{other}wallet:balance:wallet:1"),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&survivor.stdout).trim(),
        "1",
        "another prefix's keys are untouched"
    );
}

/// `waiaas serve` on `db` at `port`, with webhooks allowed to reach loopback and retried
/// quickly, and the shared Redis under its own prefix.
fn serve_on(db_url: &str, port: u16, prefix: &str) -> tokio::process::Child {
    serve_on_with(db_url, port, prefix, &[])
}

/// [`serve_on`] with more environment variables.
pub(crate) fn serve_on_with(
    db_url: &str,
    port: u16,
    prefix: &str,
    more: &[(&str, String)],
) -> tokio::process::Child {
    tokio::process::Command::new(binary())
        .arg("serve")
        .env("WAIAAS__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("WAIAAS__DATABASE__URL", db_url)
        .env("WAIAAS__DATABASE__MAX_CONNECTIONS", "4")
        .env("WAIAAS__DATABASE__AUTO_MIGRATE", "false")
        .env("WAIAAS__REDIS__URL", waiaas_testkit::test_redis_url())
        .env("WAIAAS__REDIS__KEY_PREFIX", prefix)
        .env("WAIAAS__AUTH__BOOTSTRAP_TOKEN", "boot")
        .env("WAIAAS__RATE_LIMIT__ENABLED", "false")
        .env("WAIAAS__SERVER__SHUTDOWN_GRACE_MS", "60000")
        .env("WAIAAS__WEBHOOKS__ALLOW_PRIVATE_NETWORKS", "true")
        .env("WAIAAS__WEBHOOKS__POLL_INTERVAL_MS", "100")
        .env("WAIAAS__WEBHOOKS__RETRY_BASE_MS", "200")
        .env("WAIAAS__WEBHOOKS__TIMEOUT_MS", "1000")
        .env("WAIAAS_CONFIG_DIR", "/nonexistent")
        .envs(more.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("waiaas serve")
}

/// Sends SIGTERM to `child` and expects it to exit successfully within `within`.
pub(crate) async fn sigterm(child: &mut tokio::process::Child, within: Duration, what: &str) {
    let pid = child.id().expect("pid").to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(within, child.wait())
        .await
        .expect(what)
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

pub(crate) async fn until_ready(client: &reqwest::Client, base: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map_or(true, |r| r.status() != StatusCode::OK)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "serve never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A real `waiaas serve` commits transfers whose webhook deliveries cannot go out yet (the
/// receiver refuses them), and is killed with SIGKILL; a new process on the same database
/// delivers every one of them once the receiver accepts. An open SSE stream does not hold up
/// a SIGTERM: the process ends its streams and stops at once, well inside its grace period.
#[tokio::test]
async fn events_committed_before_a_sigkill_are_delivered_after_the_restart() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let db = waiaas_testkit::TestDb::new().await;
    let prefix = waiaas_testkit::unique_prefix();
    let accepting = Arc::new(AtomicBool::new(false));
    let received = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let receiver = {
        let (accepting, received) = (accepting.clone(), received.clone());
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (accepting, received) = (accepting.clone(), received.clone());
                async move {
                    if !accepting.load(Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    received.lock().unwrap().push(v);
                    StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let client = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut first = serve_on(&db.url, port, &prefix);
    until_ready(&client, &base).await;
    let post = |path: &str, token: &str, body: serde_json::Value, key: Option<String>| {
        let mut req = client
            .post(format!("{base}{path}"))
            .bearer_auth(token.to_owned())
            .json(&body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let path = path.to_owned();
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let owner = post(
        "/v1/owners",
        "boot",
        serde_json::json!({"name": "killed"}),
        None,
    )
    .await;
    let owner_key = owner["api_key"].as_str().unwrap().to_owned();
    let hook = post(
        "/v1/webhooks",
        &owner_key,
        serde_json::json!({"url": hook, "events": ["transaction.completed"]}),
        None,
    )
    .await;
    assert!(hook["secret"].is_string());
    let agent = post(
        "/v1/agents",
        &owner_key,
        serde_json::json!({"name": "a"}),
        None,
    )
    .await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    let key = post(
        &format!("/v1/agents/{agent_id}/keys"),
        &owner_key,
        serde_json::json!({}),
        None,
    )
    .await;
    let agent_key = key["api_key"].as_str().unwrap().to_owned();
    let mut wallets = Vec::new();
    for deposit in [1_000, 0] {
        let w = post(
            &format!("/v1/agents/{agent_id}/wallets"),
            &owner_key,
            serde_json::json!({"asset": "USD"}),
            None,
        )
        .await;
        let id = w["id"].as_str().unwrap().to_owned();
        if deposit > 0 {
            post(
                &format!("/v1/wallets/{id}/deposits"),
                &owner_key,
                serde_json::json!({"amount": deposit}),
                Some(uuid::Uuid::new_v4().to_string()),
            )
            .await;
        }
        wallets.push(id);
    }
    let mut transfers = Vec::new();
    for i in 1..=5 {
        let t = post(
            &format!("/v1/wallets/{}/transfers", wallets[0]),
            &agent_key,
            serde_json::json!({"amount": i, "to_wallet_id": wallets[1]}),
            Some(uuid::Uuid::new_v4().to_string()),
        )
        .await;
        transfers.push(t["id"].as_str().unwrap().to_owned());
    }
    // Killed with its deliveries pending (refused so far, or not yet attempted).
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    assert!(received.lock().unwrap().is_empty());

    accepting.store(true, Ordering::SeqCst);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut second = serve_on(&db.url, port, &prefix);
    until_ready(&client, &base).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let delivered: std::collections::HashSet<String> = received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|v| v["data"]["transaction"]["id"].as_str().map(str::to_owned))
            .collect();
        if transfers.iter().all(|t| delivered.contains(t)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after the restart only {delivered:?} of {transfers:?} arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM with a stream open: the stream ends and the process stops, although its grace
    // period (60 s here) is longer than the wait below.
    let stream = client
        .get(format!("{base}/v1/wallets/{}/events", wallets[0]))
        .bearer_auth(&agent_key)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    sigterm(
        &mut second,
        Duration::from_secs(15),
        "stopped without waiting for its open stream",
    )
    .await;
    let rest = tokio::time::timeout(Duration::from_secs(5), stream.bytes())
        .await
        .expect("the stream ended");
    drop(rest);
}

#[tokio::test]
async fn metrics_can_move_to_their_own_port_and_ask_for_a_token() {
    // In process: a token on the public port.
    let db = waiaas_testkit::TestDb::new().await;
    let mut settings = waiaas_tests::TestApp::settings(&db, &waiaas_tests::Options::default());
    settings.server.metrics_token = Some("scrape-secret".to_owned().into());
    let app = waiaas_tests::TestApp::spawn_with(settings).await;
    let metrics = format!("{}/metrics", app.base);
    let anonymous = app.client.get(&metrics).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = app
        .client
        .get(&metrics)
        .bearer_auth("scrape-secreT")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let scraped = app
        .client
        .get(&metrics)
        .bearer_auth("scrape-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped.text().await.unwrap().contains("waiaas_"));
    app.stop().await;

    // The binary: metrics on their own port, nothing on the public one.
    let (name, url) = new_database().await;
    let (port, metrics_port) = (free_port(), free_port());
    let child = serve_without_redis(
        &url,
        port,
        &[
            (
                "WAIAAS__SERVER__METRICS_LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            ),
            ("WAIAAS__SERVER__METRICS_TOKEN", "scrape-secret".to_owned()),
            // Every statement counts as slow: the counter must see them, whatever the log
            // filter shows.
            ("WAIAAS__DATABASE__SLOW_STATEMENT_MS", "0".to_owned()),
            ("RUST_LOG", "error".to_owned()),
        ],
    );
    let client = reqwest::Client::new();
    wait_answering(&client, &format!("http://127.0.0.1:{port}/healthz")).await;
    let public = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .bearer_auth("scrape-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let own = format!("http://127.0.0.1:{metrics_port}/metrics");
    assert_eq!(
        client.get(&own).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let scraped = client
        .get(&own)
        .bearer_auth("scrape-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    let text = scraped.text().await.unwrap();
    assert!(text.contains("waiaas_"));
    let slow = text
        .lines()
        .find_map(|l| l.strip_prefix("waiaas_db_slow_statements_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(
        slow.is_some_and(|n| n > 0.0),
        "slow statements counted though the log filter is `error`: {slow:?}"
    );
    assert_eq!(
        client
            .get(format!("http://127.0.0.1:{metrics_port}/v1/agents"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND,
        "the metrics port serves metrics only"
    );
    drop(child);
    drop_database(&name).await;
}

#[tokio::test]
async fn waiaas_demo_leaves_days_of_activity_a_pending_approval_and_keys_that_work() {
    let (name, url) = new_database().await;
    let out = tokio::process::Command::new(binary())
        .args(["demo", "--days", "3"])
        .env("WAIAAS__DATABASE__URL", &url)
        .env("WAIAAS__DATABASE__MIN_CONNECTIONS", "0")
        .env("WAIAAS__DATABASE__MAX_CONNECTIONS", "3")
        .env("WAIAAS_CONFIG_DIR", "/nonexistent")
        .output()
        .await
        .expect("waiaas demo");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{stdout}"))
            .trim()
            .to_owned()
    };
    let owner_key = field("owner api_key:");
    let pending = field("waiting for your approval: transaction");
    assert!(owner_key.starts_with("wak_"), "{stdout}");

    // Days of history, refused and waiting payments, and a ledger that adds up.
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    let days = sea_orm::ConnectionTrait::query_one_raw(
        &db,
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(DISTINCT (created_at AT TIME ZONE 'UTC')::date)::bigint AS days, \
             count(*) FILTER (WHERE status = 'denied')::bigint AS denied, \
             count(*) FILTER (WHERE status = 'completed')::bigint AS completed FROM transactions",
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let get = |c: &str| days.try_get::<i64>("", c).unwrap();
    assert!(
        get("days") >= 4,
        "three past days and today: {}",
        get("days")
    );
    assert!(get("denied") >= 1 && get("completed") >= 20, "{stdout}");
    db.close().await.unwrap();
    let mut settings = waiaas_app::Settings::default();
    settings.database.url = url.clone();
    assert!(waiaas_app::commands::reconcile(&settings).await.unwrap());

    // The printed keys work against the service, and the approval goes through.
    let app = waiaas_tests::TestApp::spawn_with(waiaas_tests::TestApp::settings_for(
        &url,
        &waiaas_tests::Options::default(),
    ))
    .await;
    let agents = app.get("/v1/agents", &owner_key).await;
    assert_eq!(agents.body["items"].as_array().map(Vec::len), Some(2));
    let shopper_key = field("agent shopper:")
        .rsplit_once("api_key ")
        .map(|(_, k)| k.to_owned())
        .unwrap();
    let tx = app
        .get(&format!("/v1/transactions/{pending}"), &shopper_key)
        .await;
    assert_eq!(tx.str("status"), "pending_approval", "{:?}", tx.body);
    // The console it points to shows that payment first.
    assert!(stdout.contains("/console and sign in"), "{stdout}");
    let home = app.get("/v1/home", &owner_key).await;
    assert_eq!(
        home.body["pending"][0]["id"],
        pending.as_str(),
        "{:?}",
        home.body
    );
    assert_eq!(home.body["agents"].as_array().map(Vec::len), Some(2));
    let approved = app
        .post(
            &format!("/v1/transactions/{pending}/approve"),
            &owner_key,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    app.stop().await;
    drop_database(&name).await;
}
