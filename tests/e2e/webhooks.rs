//! Webhooks end to end, with a real HTTP receiver on a free port: signatures verify with the
//! secret shown once; a receiver that fails its first attempts gets each event exactly once
//! after it recovers, in order, though two instances deliver; a delivery given up for good
//! notifies the owner and can be retried; bad input is a 4xx, another tenant's endpoint a 404.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use waiaas_domain::webhooks::verify_signature;
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

/// A request the receiver got: headers, body, and whether it answered 200.
type Seen = (HeaderMap, Vec<u8>, bool);

/// A receiver: answers 500 to its first `fail_first` requests (and to every one while
/// `down`), 200 after; records every request.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    fail_first: Arc<AtomicUsize>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Receiver {
    async fn start(fail_first: usize) -> (Self, String) {
        let r = Self::default();
        r.fail_first.store(fail_first, Ordering::SeqCst);
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let fail = state.down.load(Ordering::SeqCst)
                        || state
                            .fail_first
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok();
                    state
                        .seen
                        .lock()
                        .unwrap()
                        .push((headers, body.to_vec(), !fail));
                    if fail {
                        AxumStatus::INTERNAL_SERVER_ERROR
                    } else {
                        AxumStatus::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (r, format!("http://{addr}/hook"))
    }

    /// The bodies it accepted (answered 200), in arrival order.
    fn accepted(&self) -> Vec<(HeaderMap, Vec<u8>)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, ok)| *ok)
            .map(|(h, b, _)| (h.clone(), b.clone()))
            .collect()
    }
}

async fn app(db: &TestDb, give_up_after_s: u64) -> TestApp {
    let mut settings = TestApp::settings(db, &Options::default());
    settings.webhooks.allow_private_networks = true;
    settings.webhooks.poll_interval_ms = 50;
    settings.webhooks.retry_base_ms = 100;
    settings.webhooks.give_up_after_s = give_up_after_s;
    settings.events.poll_interval_ms = 200;
    TestApp::spawn_with(settings).await
}

async fn eventually<T>(what: &str, wait: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovering_receiver_gets_every_event_once_signed_and_in_order_from_two_instances() {
    let db = TestDb::new().await;
    let a = app(&db, 86_400).await;
    let b = app(&db, 86_400).await;
    let (receiver, url) = Receiver::start(3).await;
    let (_, owner) = a.owner("Acme").await;
    let (agent, key) = a.agent(&owner, "buyer").await;
    let x = a.wallet(&owner, &agent, "USD", 1_000).await;
    let y = a.wallet(&owner, &agent, "USD", 0).await;
    // Every event placed after the endpoint exists is delivered to it: the deposit's event
    // is placed first, so that only the ten transfers' events are (a relay lets commits
    // gather before placing them, and a busy machine delays it further).
    eventually(
        "the deposit's event placed",
        Duration::from_secs(30),
        async || {
            let unplaced = waiaas_testkit::text_of(
                &db.db,
                "SELECT count(*)::text AS v FROM events WHERE seq IS NULL",
            )
            .await;
            (unplaced == "0").then_some(())
        },
    )
    .await;
    let hook = a
        .post(
            "/v1/webhooks",
            &owner,
            json!({ "url": url, "events": ["transaction.completed"], "description": "books" }),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    let secret = hook.str("secret");
    assert!(secret.starts_with("whsec_"));
    let hook_id = hook.str("id");
    let listed = a.get(&format!("/v1/webhooks/{hook_id}"), &owner).await;
    assert!(
        listed.body.get("secret").is_none(),
        "the secret is shown once"
    );

    let mut posted = Vec::new();
    for i in 0..10 {
        // Half through each instance: either may place the events and deliver them.
        let via = if i % 2 == 0 { &a } else { &b };
        let t = via.transfer(&key, &x, &y, 1, &format!("w-{i}")).await;
        assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
        posted.push(t.str("id"));
    }
    let accepted = eventually("ten events accepted", Duration::from_secs(30), async || {
        let got = receiver.accepted();
        (got.len() >= 10).then_some(got)
    })
    .await;
    // No more come: each was delivered once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.accepted().len(),
        10,
        "an event was delivered twice"
    );

    let now = chrono::Utc::now();
    let mut ids = Vec::new();
    let mut transactions = Vec::new();
    for (headers, body) in &accepted {
        let signature = headers["waiaas-signature"].to_str().unwrap();
        verify_signature(&secret, signature, body, Duration::from_secs(300), now)
            .expect("the signature verifies with the secret shown at creation");
        assert!(
            verify_signature(
                "whsec_wrong",
                signature,
                body,
                Duration::from_secs(300),
                now
            )
            .is_err()
        );
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            headers["waiaas-event-id"].to_str().unwrap(),
            v["id"].to_string()
        );
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(v["type"], "transaction.completed");
        assert_eq!(v["data"]["wallet_id"], x.as_str());
        ids.push(v["id"].as_i64().unwrap());
        transactions.push(v["data"]["transaction"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(transactions, posted, "one wallet's events arrive in order");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(
        receiver.seen.lock().unwrap().len(),
        13,
        "three refused attempts, then ten accepted"
    );

    let deliveries = a
        .get(&format!("/v1/webhooks/{hook_id}/deliveries"), &owner)
        .await;
    assert_eq!(deliveries.status, StatusCode::OK);
    let items = deliveries.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    assert!(
        items
            .iter()
            .all(|d| d["status"] == "delivered" && d["last_status_code"] == 200)
    );
    let retried: u64 = items
        .iter()
        .map(|d| d["attempts"].as_u64().unwrap() - 1)
        .sum();
    assert_eq!(retried, 3, "{items:?}");
    let page = a
        .get(
            &format!(
                "/v1/webhooks/{hook_id}/deliveries?limit=3&before={}",
                ids[9]
            ),
            &owner,
        )
        .await;
    let page_ids: Vec<i64> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event_id"].as_i64().unwrap())
        .collect();
    assert_eq!(page_ids, [ids[8], ids[7], ids[6]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_given_up_notifies_the_owner_and_a_retry_delivers_it() {
    let db = TestDb::new().await;
    let a = app(&db, 1).await;
    let (receiver, url) = Receiver::start(0).await;
    receiver.down.store(true, Ordering::SeqCst);
    let (_, owner) = a.owner("Acme").await;
    let (agent, key) = a.agent(&owner, "buyer").await;
    let x = a.wallet(&owner, &agent, "USD", 1_000).await;
    let y = a.wallet(&owner, &agent, "USD", 0).await;
    let hook = a
        .post(
            "/v1/webhooks",
            &owner,
            json!({ "url": url, "events": ["*"] }),
        )
        .await;
    let hook_id = hook.str("id");
    a.transfer(&key, &x, &y, 5, "given-up").await;
    let failed = eventually(
        "the delivery is given up",
        Duration::from_secs(20),
        async || {
            let d = a
                .get(&format!("/v1/webhooks/{hook_id}/deliveries"), &owner)
                .await;
            let items = d.body["items"].as_array()?.clone();
            items.into_iter().find(|d| d["status"] == "failed")
        },
    )
    .await;
    assert!(failed["attempts"].as_u64().unwrap() >= 2, "{failed}");
    assert_eq!(failed["last_status_code"], 500);
    assert!(failed["next_attempt_at"].is_null());
    let notes = a.get("/v1/notifications", &owner).await;
    assert!(
        notes.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "webhook_failed"),
        "{:?}",
        notes.body
    );

    // The receiver is back; the owner retries; it arrives once.
    receiver.down.store(false, Ordering::SeqCst);
    let delivery = failed["id"].as_str().unwrap();
    let retry = a
        .post(
            &format!("/v1/webhooks/{hook_id}/deliveries/{delivery}/retry"),
            &owner,
            json!({}),
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK, "{:?}", retry.body);
    assert_eq!(retry.str("status"), "pending");
    // Other deliveries of the transfer's events may still be pending, behind this one (an
    // endpoint gets a wallet's events in order): they arrive after it. Count this event's.
    let event_id = failed["event_id"].as_i64().unwrap().to_string();
    let arrived = || {
        receiver
            .accepted()
            .iter()
            .filter(|(h, _)| {
                h.get(waiaas_domain::webhooks::EVENT_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    == Some(event_id.as_str())
            })
            .count()
    };
    eventually(
        "the retried delivery arrives",
        Duration::from_secs(10),
        async || (arrived() > 0).then_some(()),
    )
    .await;
    assert_eq!(arrived(), 1, "it arrives once");
    let again = a
        .post(
            &format!("/v1/webhooks/{hook_id}/deliveries/{delivery}/retry"),
            &owner,
            json!({}),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::NOT_FOUND,
        "a delivered one is done"
    );
}

#[tokio::test]
async fn webhook_management_refuses_bad_input_agents_and_other_tenants() {
    let db = TestDb::new().await;
    // Default settings: only public https endpoints.
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (_, other) = app.owner("Other").await;
    let (_, agent_key) = app.agent(&owner, "buyer").await;
    let good = json!({ "url": "https://hooks.example.com/waiaas", "events": ["*"] });

    let as_agent = app.post("/v1/webhooks", &agent_key, good.clone()).await;
    assert_eq!(as_agent.status, StatusCode::FORBIDDEN);
    for (body, status, code) in [
        (
            json!({ "url": "http://hooks.example.com/", "events": ["*"] }),
            422,
            "invalid_webhook",
        ),
        (
            json!({ "url": "https://127.0.0.1/", "events": ["*"] }),
            422,
            "invalid_webhook",
        ),
        (
            json!({ "url": "https://169.254.169.254/latest", "events": ["*"] }),
            422,
            "invalid_webhook",
        ),
        (
            json!({ "url": "https://localhost:8080/", "events": ["*"] }),
            422,
            "invalid_webhook",
        ),
        (
            json!({ "url": "https://hooks.example.com/", "events": [] }),
            422,
            "invalid_webhook",
        ),
        (
            json!({ "url": "https://hooks.example.com/", "events": ["money.stolen"] }),
            422,
            "invalid_webhook",
        ),
        (
            json!({ "url": "https://hooks.example.com/", "events": ["*"], "description": "x".repeat(501) }),
            422,
            "invalid_webhook",
        ),
        (
            json!({ "url": "https://hooks.example.com/", "events": ["*"], "secret": "mine" }),
            400,
            "invalid_request",
        ),
        (json!({ "url": 7, "events": ["*"] }), 400, "invalid_request"),
    ] {
        let r = app.post("/v1/webhooks", &owner, body.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (status, code.to_owned()),
            "{body}"
        );
    }

    let made = app.post("/v1/webhooks", &owner, good.clone()).await;
    assert_eq!(made.status, StatusCode::CREATED);
    let id = made.str("id");
    let first_secret = made.str("secret");
    for path in [
        format!("/v1/webhooks/{id}"),
        format!("/v1/webhooks/{id}/deliveries"),
    ] {
        let r = app.get(&path, &other).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    let theirs = app
        .call(
            Method::DELETE,
            &format!("/v1/webhooks/{id}"),
            Some(&other),
            None,
            None,
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);

    let patched = app
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            Some(&owner),
            Some(json!({ "enabled": false, "events": ["hold.expired", "transaction.denied"], "description": "ops" })),
            None,
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["enabled"], false);
    assert_eq!(
        patched.body["events"],
        json!(["hold.expired", "transaction.denied"])
    );
    let cleared = app
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            Some(&owner),
            Some(json!({ "description": null })),
            None,
        )
        .await;
    assert_eq!(cleared.body["description"], Value::Null);
    assert_eq!(cleared.body["enabled"], false, "untouched fields stay");
    let bad_patch = app
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            Some(&owner),
            Some(json!({ "url": "https://10.0.0.1/" })),
            None,
        )
        .await;
    assert_eq!(bad_patch.code(), "invalid_webhook");

    let rotated = app
        .post(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &owner,
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert_ne!(rotated.str("secret"), first_secret);

    // At most 20 endpoints.
    for _ in 1..20 {
        let r = app.post("/v1/webhooks", &owner, good.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let over = app.post("/v1/webhooks", &owner, good.clone()).await;
    assert_eq!(over.code(), "invalid_webhook");
    let list = app.get("/v1/webhooks", &owner).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 20);

    let gone = app
        .call(
            Method::DELETE,
            &format!("/v1/webhooks/{id}"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/v1/webhooks/{id}"), &owner).await.status,
        StatusCode::NOT_FOUND
    );
    let audit = app
        .get("/v1/audit-logs?resource_type=webhook", &owner)
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource_id"] == id.as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "webhook.delete",
            "webhook.rotate_secret",
            "webhook.update",
            "webhook.update",
            "webhook.create"
        ]
    );
}

/// Redis killed while deliveries are pending and going out: nothing is lost (deliveries and
/// their order live in PostgreSQL; Redis only rings the relays' doorbell), two instances still
/// deliver each event once, and events about other records than transactions (an agent
/// created, a key revoked) arrive like the rest, about no wallet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_while_deliveries_go_out_loses_nothing() {
    let db = TestDb::new().await;
    let mut redis = waiaas_testkit::RedisServer::start()
        .await
        .expect("redis-server");
    let on_private = |db: &TestDb| {
        let mut settings = TestApp::settings(
            db,
            &Options {
                redis_url: Some(redis.url()),
                ..Options::default()
            },
        );
        settings.webhooks.allow_private_networks = true;
        settings.webhooks.poll_interval_ms = 50;
        settings.webhooks.retry_base_ms = 100;
        settings.events.poll_interval_ms = 200;
        settings
    };
    let a = TestApp::spawn_with(on_private(&db)).await;
    let b = TestApp::spawn_with(on_private(&db)).await;
    let (receiver, url) = Receiver::start(0).await;
    receiver.down.store(true, Ordering::SeqCst);
    let (_, owner) = a.owner("Acme").await;
    let hook = a
        .post(
            "/v1/webhooks",
            &owner,
            json!({ "url": url, "events": ["*"] }),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    let (agent, key) = a.agent(&owner, "buyer").await;
    let x = a.wallet(&owner, &agent, "USD", 1_000).await;
    let y = a.wallet(&owner, &agent, "USD", 0).await;
    let mut posted = Vec::new();
    for i in 0..10 {
        let via = if i % 2 == 0 { &a } else { &b };
        let t = via.transfer(&key, &x, &y, 1, &format!("r-{i}")).await;
        assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
        posted.push(t.str("id"));
    }
    // Some attempts fail at the receiver; then Redis dies and the receiver comes back.
    eventually("refused attempts", Duration::from_secs(30), async || {
        (!receiver.seen.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    redis.kill();
    receiver.down.store(false, Ordering::SeqCst);
    for i in 10..15 {
        let via = if i % 2 == 0 { &a } else { &b };
        let t = via.transfer(&key, &x, &y, 1, &format!("r-{i}")).await;
        assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
        posted.push(t.str("id"));
    }
    let deleted = b
        .call(
            Method::DELETE,
            &format!("/v1/agents/{agent}"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let bodies = |receiver: &Receiver| -> Vec<Value> {
        receiver
            .accepted()
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap())
            .collect()
    };
    let of_x = |all: &[Value]| -> Vec<String> {
        all.iter()
            .filter(|v| {
                v["type"] == "transaction.completed"
                    && v["data"]["transaction"]["kind"] == "transfer"
            })
            .map(|v| v["data"]["transaction"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = eventually(
        "every event delivered",
        Duration::from_secs(60),
        async || {
            let all = bodies(&receiver);
            let deleted = all.iter().any(|v| v["type"] == "api_key.revoked");
            (of_x(&all).len() >= posted.len() && deleted).then_some(all)
        },
    )
    .await;
    assert_eq!(
        of_x(&all),
        posted,
        "every transfer once, in order, with Redis dead"
    );
    let mut ids: Vec<i64> = all.iter().map(|v| v["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "no event was delivered twice");
    // Events about the agent and its key, about no wallet.
    let agent_events: Vec<&Value> = all
        .iter()
        .filter(|v| v["data"]["agent"]["id"] == agent.as_str())
        .collect();
    let kinds: Vec<&str> = agent_events
        .iter()
        .map(|v| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["agent.created", "agent.deleted"]);
    assert!(
        agent_events
            .iter()
            .all(|v| v["data"]["wallet_id"].is_null())
    );
    let revoked = all
        .iter()
        .find(|v| v["type"] == "api_key.revoked")
        .expect("the deleted agent's key was revoked");
    assert_eq!(revoked["data"]["api_key"]["agent_id"], agent.as_str());
    assert!(!revoked.to_string().contains("hash"));
    redis.restart().await.expect("redis restarted");
    a.stop().await;
    b.stop().await;
}
