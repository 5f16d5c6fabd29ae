//! Read replicas: listings come from a streaming replica only when it has replayed the
//! caller's writes (its consistency token, or this instance's latest write), and from the
//! primary when the replica is paused behind them or gone.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use waiaas_testkit::{PgServer, text_of};
use waiaas_tests::{Options, Reply, TestApp};

/// `waiaas_db_replica_reads_total{served_by=…}` from the instance's `/metrics`.
async fn served(app: &TestApp, by: &str) -> u64 {
    let text = app.metrics().await;
    let prefix = format!("waiaas_db_replica_reads_total{{served_by=\"{by}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap_or(0.0) as u64)
}

async fn listing(app: &TestApp, wallet: &str, key: &str, token: Option<&str>) -> Reply {
    let mut req = app
        .client
        .request(
            Method::GET,
            format!("{}/v1/wallets/{wallet}/transactions", app.base),
        )
        .bearer_auth(key);
    if let Some(t) = token {
        req = req.header("WAIaaS-Consistency-Token", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    Reply {
        status,
        body,
        headers,
    }
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect()
}

fn token(reply: &Reply) -> String {
    reply
        .headers
        .get("waiaas-consistency-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("a write answers with its token: {:?}", reply.headers))
        .to_owned()
}

/// Waits until the replica has replayed up to `token`.
async fn replayed(replica: &sea_orm::DatabaseConnection, token: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let sql = format!("SELECT (pg_last_wal_replay_lsn() >= '{token}'::pg_lsn)::text AS v");
        if text_of(replica, &sql).await == "true" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never reached {token}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listings_come_from_a_replica_only_when_it_holds_the_callers_writes() {
    let primary = PgServer::start(&[]).await.unwrap();
    let url = primary.migrated_database("waiaas").await.unwrap();
    let mut standby = primary.start_replica().await.unwrap();
    let replica = sea_orm::Database::connect(standby.url("waiaas"))
        .await
        .unwrap();
    let mut settings = TestApp::settings_for(&url, &Options::default());
    settings.database.replica_urls = vec![standby.url("waiaas")];
    let app = TestApp::spawn_with(settings).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent_id, agent) = app.agent(&owner, "bot").await;
    let from = app.wallet(&owner, &agent_id, "USD", 10_000).await;
    let to = app.wallet(&owner, &agent_id, "USD", 0).await;

    // A write's token; once the replica has it, a read with it is served there.
    let first = app.transfer(&agent, &from, &to, 100, "first").await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let t1 = token(&first);
    replayed(&replica, &t1).await;
    let before = served(&app, "replica").await;
    let page = listing(&app, &from, &owner, Some(&t1)).await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    assert!(ids(&page).contains(&first.str("id")));
    assert!(
        served(&app, "replica").await > before,
        "served by the replica"
    );

    // The replica stops replaying: a later write is not there, and no read may miss it.
    text_of(&replica, "SELECT pg_wal_replay_pause()::text AS v").await;
    let second = app.transfer(&agent, &from, &to, 200, "second").await;
    assert_eq!(second.status, StatusCode::CREATED, "{:?}", second.body);
    let t2 = token(&second);
    let on_replica = text_of(
        &replica,
        &format!(
            "SELECT count(*)::text AS v FROM transactions WHERE id = '{}'",
            second.str("id")
        ),
    )
    .await;
    assert_eq!(
        on_replica, "0",
        "the paused replica does not have the second transfer"
    );
    let behind = served(&app, "primary_replicas_behind").await;
    let page = listing(&app, &from, &owner, Some(&t2)).await;
    assert!(ids(&page).contains(&second.str("id")), "{:?}", page.body);
    // Without a token too: this instance remembers its own latest write.
    let page = listing(&app, &from, &owner, None).await;
    assert!(ids(&page).contains(&second.str("id")), "{:?}", page.body);
    let audit = app
        .get(
            &format!(
                "/v1/audit-logs?resource_type=transaction&resource_id={}",
                second.str("id")
            ),
            &owner,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{:?}", audit.body);
    assert!(
        audit.body["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty()),
        "the audit trail of the second transfer: {:?}",
        audit.body
    );
    assert!(
        served(&app, "primary_replicas_behind").await >= behind + 3,
        "the primary served what the replica did not have"
    );

    // The lag is on /metrics (the gauges are set every 5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = app.metrics().await;
        let lag = text
            .lines()
            .filter(|l| l.starts_with("waiaas_db_replica_lag_seconds{"))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .fold(0.0_f64, f64::max);
        if lag > 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no replica lag reported while replay is paused"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Replaying again, it serves that token's reads once it has caught up.
    text_of(&replica, "SELECT pg_wal_replay_resume()::text AS v").await;
    replayed(&replica, &t2).await;
    let before = served(&app, "replica").await;
    let page = listing(&app, &from, &owner, Some(&t2)).await;
    assert!(ids(&page).contains(&second.str("id")), "{:?}", page.body);
    assert!(served(&app, "replica").await > before);

    // A token the service did not give out is refused, not ignored.
    let bad = listing(&app, &from, &owner, Some("not-a-token")).await;
    assert_eq!(
        (bad.status, bad.body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_consistency_token"))
    );

    // The replica gone: reads carry on from the primary.
    replica.close().await.unwrap();
    standby.kill();
    let gone = served(&app, "primary_replicas_unavailable").await
        + served(&app, "primary_after_replica_error").await;
    for _ in 0..3 {
        let page = listing(&app, &from, &owner, Some(&t2)).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        assert_eq!(
            ids(&page).len(),
            3,
            "a deposit and two transfers: {:?}",
            page.body
        );
    }
    assert!(
        served(&app, "primary_replicas_unavailable").await
            + served(&app, "primary_after_replica_error").await
            >= gone + 3
    );
    app.stop().await;
}
