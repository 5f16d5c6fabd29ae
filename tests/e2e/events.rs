//! Resumable live streams over the transactional outbox: a client that reconnects with
//! `Last-Event-ID` gets every event after it, in order, once; and an instance that stops right
//! after its commits (before its relay could place or send anything) loses no event: another
//! instance's relay finds them in PostgreSQL and streams them.

use std::time::Duration;

use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::Value;
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

/// An open event stream, parsed into its events' data.
struct Stream {
    body: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
}

impl Stream {
    async fn open(app: &TestApp, wallet: &str, token: &str, last: Option<i64>) -> Self {
        let mut req = app
            .client
            .get(format!("{}/v1/wallets/{wallet}/events", app.base))
            .bearer_auth(token)
            .timeout(Duration::from_secs(120));
        if let Some(last) = last {
            req = req.header("Last-Event-ID", last.to_string());
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        Self {
            body: r.bytes_stream().map(|c| c.map(|b| b.to_vec())).boxed(),
            buffer: String::new(),
        }
    }

    /// The next `n` events' data, within `wait`.
    async fn take(&mut self, n: usize, wait: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        tokio::time::timeout(wait, async {
            while out.len() < n {
                while let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let id = block.lines().find_map(|l| l.strip_prefix("id: "));
                    let data = block.lines().find_map(|l| l.strip_prefix("data: "));
                    if let (Some(id), Some(data)) = (id, data) {
                        let v: Value = serde_json::from_str(data).unwrap();
                        assert_eq!(v["id"].to_string(), id, "the SSE id is the event's");
                        out.push(v);
                    }
                }
                if out.len() >= n {
                    break;
                }
                let chunk = self.body.next().await.expect("the stream ended").unwrap();
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("only {} of {n} events arrived", out.len()));
        out
    }
}

impl Stream {
    /// The next `n` events about transfers (a wallet's deposit, committed before the stream
    /// opened, may be placed just after it and come first).
    async fn take_transfers(&mut self, n: usize, wait: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let more = self.take(n - out.len(), wait).await;
            out.extend(
                more.into_iter()
                    .filter(|e| e["transaction"]["kind"] == "transfer"),
            );
        }
        out
    }
}

fn tx_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["transaction"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumed_with_last_event_id_after_100_events_sees_every_one_in_order() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, key) = app.agent(&owner, "buyer").await;
    let a = app.wallet(&owner, &agent, "USD", 10_000).await;
    let b = app.wallet(&owner, &agent, "USD", 0).await;

    let mut stream = Stream::open(&app, &a, &key, None).await;
    let mut posted = Vec::new();
    for i in 0..100 {
        let t = app.transfer(&key, &a, &b, 1, &format!("t-{i}")).await;
        assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
        posted.push(t.str("id"));
    }
    // The client reads 40, then its connection drops.
    let first = stream.take_transfers(40, Duration::from_secs(30)).await;
    drop(stream);
    let last = first.last().unwrap()["id"].as_i64().unwrap();
    // More happens while it is away.
    for i in 100..110 {
        let t = app.transfer(&key, &a, &b, 1, &format!("t-{i}")).await;
        posted.push(t.str("id"));
    }
    let mut resumed = Stream::open(&app, &a, &key, Some(last)).await;
    let rest = resumed.take_transfers(70, Duration::from_secs(30)).await;
    let mut seen = tx_ids(&first);
    seen.extend(tx_ids(&rest));
    assert_eq!(seen, posted, "every event once, in commit order");
    let ids: Vec<i64> = first
        .iter()
        .chain(&rest)
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(
        rest.iter()
            .all(|e| e["type"] == "transaction.completed" && e["wallet_id"] == a.as_str())
    );
    // And it goes on live: a new one arrives on the resumed stream.
    let t = app.transfer(&key, &a, &b, 1, "live").await;
    let live = resumed.take(1, Duration::from_secs(10)).await;
    assert_eq!(tx_ids(&live), [t.str("id")]);

    // A Last-Event-ID that is no event id is refused.
    let bad = app
        .client
        .get(format!("{}/v1/wallets/{a}/events", app.base))
        .bearer_auth(&key)
        .header("Last-Event-ID", "-3")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

/// Instance A commits with its background work stopped, as if it died right after its
/// commits: nothing was placed or sent by it. Instance B's relay, polling PostgreSQL, places
/// and streams every event (the doorbell rings only for what B placed itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_by_an_instance_that_died_before_relaying_them_still_arrive() {
    let db = TestDb::new().await;
    let a_app = TestApp::spawn(&db, Options::default()).await;
    let b_app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = a_app.owner("Acme").await;
    let (agent, key) = a_app.agent(&owner, "buyer").await;
    let x = a_app.wallet(&owner, &agent, "USD", 1_000).await;
    let y = a_app.wallet(&owner, &agent, "USD", 0).await;
    let mut stream = Stream::open(&b_app, &y, &key, None).await;

    a_app.app.background.stop();
    let mut posted = Vec::new();
    for i in 0..5 {
        let t = a_app.transfer(&key, &x, &y, 2, &format!("k-{i}")).await;
        assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
        posted.push(t.str("id"));
    }
    let got = stream.take(5, Duration::from_secs(15)).await;
    assert_eq!(tx_ids(&got), posted);
    assert!(got.iter().all(|e| e["wallet_id"] == y.as_str()));
}

/// Retention deletes old events in batches on the one instance that holds its lock, and a
/// client asking to resume below what it deleted is told so (`410 events_expired`) instead
/// of silently missing events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_are_deleted_under_the_jobs_lock_and_resuming_below_them_is_a_410() {
    use sea_orm::ConnectionTrait as _;
    use waiaas_domain::ports::EventLog as _;

    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, key) = app.agent(&owner, "buyer").await;
    let a = app.wallet(&owner, &agent, "USD", 1_000).await;
    let b = app.wallet(&owner, &agent, "USD", 0).await;
    // An endpoint, so that the events have deliveries (marked delivered below).
    let hook = app
        .post(
            "/v1/webhooks",
            &owner,
            serde_json::json!({ "url": "https://hooks.example.com/w", "events": ["*"] }),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED);
    let mut stream = Stream::open(&app, &a, &key, None).await;
    for i in 0..4 {
        app.transfer(&key, &a, &b, 1, &format!("r-{i}")).await;
    }
    let events = stream.take_transfers(4, Duration::from_secs(10)).await;
    db.db
        .execute_unprepared(
            "UPDATE webhook_deliveries SET status = 'delivered', finished_at = now()",
        )
        .await
        .unwrap();
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    // Everything up to the second transfer's event is 40 days old.
    waiaas_testkit::tamper(
        &db.db,
        &format!(
            "UPDATE events SET created_at = now() - interval '40 days' WHERE seq <= {}",
            ids[1]
        ),
    )
    .await;
    let pg = db.postgres();
    let locks = app.app.locks.clone();

    // Another instance runs the job: this one deletes nothing.
    let held = locks
        .acquire(waiaas_app::retention::LOCK, Duration::from_secs(30))
        .await
        .unwrap()
        .expect("the lock is free");
    let skipped = waiaas_app::retention::run_once(&pg, locks.as_ref(), 30, 1)
        .await
        .unwrap();
    assert_eq!(skipped, None);
    locks.release(&held).await.unwrap();

    let old = db
        .postgres()
        .after(0, None, 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.id <= ids[1])
        .count();
    let deleted = waiaas_app::retention::run_once(&pg, locks.as_ref(), 30, 1)
        .await
        .unwrap();
    assert_eq!(deleted, Some(u64::try_from(old).unwrap()), "batch by batch");
    let bounds = pg.bounds().await.unwrap();
    assert_eq!(bounds.pruned_through, ids[1]);
    let left = pg.after(0, None, 10_000).await.unwrap();
    assert!(left.iter().all(|e| e.id > ids[1]), "only the old ones went");
    assert_eq!(left.len(), 2);
    let deliveries = db
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT event_seq FROM webhook_deliveries ORDER BY event_seq",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<i64>("", "event_seq").unwrap())
        .collect::<Vec<_>>();
    assert_eq!(
        deliveries,
        ids[2..],
        "finished deliveries went with their events"
    );

    let resume = |last: i64| {
        app.client
            .get(format!("{}/v1/wallets/{a}/events", app.base))
            .bearer_auth(&key)
            .header("Last-Event-ID", last.to_string())
            .send()
    };
    let gone = resume(ids[0]).await.unwrap();
    assert_eq!(gone.status(), StatusCode::GONE);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["error"]["code"], "events_expired");
    let mut fine = Stream::open(&app, &a, &key, Some(ids[1])).await;
    let rest = fine.take(2, Duration::from_secs(10)).await;
    assert_eq!(
        rest.iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        ids[2..]
    );
}
