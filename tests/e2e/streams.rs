//! Live streams beyond one SSE connection: the WebSocket (several wallets, each resumed after
//! its last event), the bounds on open streams (per principal, a `429` with its code), the
//! end of every stream at shutdown, and agents' presence (online while a stream is open,
//! `null` without Redis).

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, token: &str) -> Ws {
    let url = format!("{}/v1/ws", app.base.replacen("http://", "ws://", 1));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON message; `Err` with the close frame's code when the server closed.
async fn recv(ws: &mut Ws) -> Result<Value, Option<u16>> {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(None),
            }
        }
    })
    .await
    .expect("a message within 20 s")
}

/// The next `n` events about transfers (a deposit committed before the subscription may be
/// placed just after it).
async fn transfers(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = recv(ws).await.unwrap();
        assert_eq!(m["type"], "event", "{m}");
        if m["event"]["transaction"]["kind"] == "transfer" {
            out.push(m["event"].clone());
        }
    }
    out
}

#[tokio::test]
async fn a_websocket_follows_several_wallets_and_resumes_each_after_its_last_event() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner_key) = app.owner("ws owner").await;
    let (agent, agent_key) = app.agent(&owner_key, "ws agent").await;
    let a = app.wallet(&owner_key, &agent, "USD", 10_000).await;
    let b = app.wallet(&owner_key, &agent, "USD", 0).await;
    let (_, other_key) = app.owner("someone else").await;
    let (other_agent, _) = app.agent(&other_key, "theirs").await;
    let theirs = app.wallet(&other_key, &other_agent, "USD", 0).await;

    // Not a WebSocket request, or no credential: refused like any call.
    let plain = app.get("/v1/ws", &agent_key).await;
    assert_eq!(
        plain.status,
        StatusCode::UPGRADE_REQUIRED,
        "{:?}",
        plain.body
    );
    assert_eq!(plain.code(), "websocket_required");
    let anonymous = app.call(Method::GET, "/v1/ws", None, None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let mut ws = connect(&app, &agent_key).await;
    // Bad messages are answered, and the socket stays open.
    ws.send(Message::Text("hello".into())).await.unwrap();
    let m = recv(&mut ws).await.unwrap();
    assert_eq!(
        (m["type"].as_str(), m["code"].as_str()),
        (Some("error"), Some("invalid_message"))
    );
    send(&mut ws, json!({"type": "subscribe", "wallet_id": theirs})).await;
    let m = recv(&mut ws).await.unwrap();
    assert_eq!(
        m["code"], "not_found",
        "another tenant's wallet does not exist: {m}"
    );
    send(
        &mut ws,
        json!({"type": "subscribe", "wallet_id": a, "after": -1}),
    )
    .await;
    assert_eq!(recv(&mut ws).await.unwrap()["code"], "invalid_message");
    for w in [&a, &b] {
        send(&mut ws, json!({"type": "subscribe", "wallet_id": w})).await;
        let m = recv(&mut ws).await.unwrap();
        assert_eq!(
            (m["type"].as_str(), m["wallet_id"].as_str()),
            (Some("subscribed"), Some(w.as_str())),
            "{m}"
        );
    }
    send(&mut ws, json!({"type": "subscribe", "wallet_id": a})).await;
    assert_eq!(recv(&mut ws).await.unwrap()["code"], "already_subscribed");

    // Each transfer is an event of both wallets.
    let mut first = Vec::new();
    for i in 1..=3 {
        let t = app
            .transfer(&agent_key, &a, &b, i, &format!("ws-{i}"))
            .await;
        assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
        first.push(t.str("id"));
    }
    let seen = transfers(&mut ws, 6).await;
    for w in [&a, &b] {
        let of: Vec<&Value> = seen.iter().filter(|e| e["wallet_id"] == **w).collect();
        let ids: Vec<String> = of
            .iter()
            .map(|e| e["transaction"]["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, first, "wallet {w}: every transfer once, in order");
    }
    let last_of_a = seen
        .iter()
        .filter(|e| e["wallet_id"] == a.as_str())
        .map(|e| e["id"].as_i64().unwrap())
        .max()
        .unwrap();
    ws.close(None).await.unwrap();

    // While disconnected, three more; a new socket resumes the wallet after its last event.
    let mut later = Vec::new();
    for i in 4..=6 {
        let t = app
            .transfer(&agent_key, &a, &b, i, &format!("ws-{i}"))
            .await;
        assert_eq!(t.status, StatusCode::CREATED);
        later.push(t.str("id"));
    }
    let mut ws = connect(&app, &agent_key).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "wallet_id": a, "after": last_of_a}),
    )
    .await;
    let m = recv(&mut ws).await.unwrap();
    assert_eq!(
        (m["type"].as_str(), m["after"].as_i64()),
        (Some("subscribed"), Some(last_of_a))
    );
    let resumed = transfers(&mut ws, 3).await;
    let ids: Vec<String> = resumed
        .iter()
        .map(|e| e["transaction"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, later, "exactly what came after, in order");
    assert!(
        resumed
            .iter()
            .all(|e| e["id"].as_i64().unwrap() > last_of_a)
    );
    send(&mut ws, json!({"type": "unsubscribe", "wallet_id": a})).await;
    assert_eq!(recv(&mut ws).await.unwrap()["type"], "unsubscribed");
    send(&mut ws, json!({"type": "unsubscribe", "wallet_id": a})).await;
    assert_eq!(recv(&mut ws).await.unwrap()["code"], "not_subscribed");

    // A socket opened with a session closes (4401) once the session is revoked.
    let session = app
        .post("/v1/sessions", &agent_key, json!({}))
        .await
        .str("token");
    let mut ws = connect(&app, &session).await;
    send(&mut ws, json!({"type": "subscribe", "wallet_id": b})).await;
    assert_eq!(recv(&mut ws).await.unwrap()["type"], "subscribed");
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
    let t = app.transfer(&agent_key, &a, &b, 1, "after-revoke").await;
    assert_eq!(t.status, StatusCode::CREATED);
    loop {
        match recv(&mut ws).await {
            Ok(m) => assert_ne!(
                m["event"]["transaction"]["id"].as_str(),
                Some(t.str("id").as_str()),
                "no event after the revocation was acknowledged"
            ),
            Err(code) => {
                assert_eq!(code, Some(4401));
                break;
            }
        }
    }
    app.stop().await;
}

/// An open SSE stream's body, read until it ends (`true`) or `wait` passes (`false`).
async fn ends_within(resp: reqwest::Response, wait: Duration) -> bool {
    let mut body = resp.bytes_stream();
    tokio::time::timeout(wait, async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn open_streams_are_bounded_per_principal_and_all_end_at_shutdown() {
    let db = TestDb::new().await;
    let mut settings = TestApp::settings(&db, &Options::default());
    settings.events.max_streams_per_principal = 2;
    let app = TestApp::spawn_with(settings).await;
    let (_, owner_key) = app.owner("bounded").await;
    let (agent, agent_key) = app.agent(&owner_key, "streamer").await;
    let a = app.wallet(&owner_key, &agent, "USD", 100).await;
    let sse = |token: &str| {
        app.client
            .get(format!("{}/v1/wallets/{a}/events", app.base))
            .bearer_auth(token.to_owned())
            .timeout(Duration::from_secs(120))
            .send()
    };

    // A WebSocket and an SSE stream: the agent's two.
    let mut ws = connect(&app, &agent_key).await;
    let first = sse(&agent_key).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let refused = sse(&agent_key).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
    assert_eq!(body["error"]["limit"], 2);
    // The bound is the principal's: the owner still opens one.
    let owners = sse(&owner_key).await.unwrap();
    assert_eq!(owners.status(), StatusCode::OK);

    // A stream that ends gives its place back.
    drop(first);
    let mut reopened = None;
    for _ in 0..100 {
        let r = sse(&agent_key).await.unwrap();
        if r.status() == StatusCode::OK {
            reopened = Some(r);
            break;
        }
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reopened = reopened.expect("the closed stream's place was given back");
    assert_eq!(app.app.streams.open(), 3);

    // Shutdown ends every stream at once (the streams would otherwise never end) and refuses
    // new ones.
    app.app.streams.close_all();
    assert!(
        ends_within(reopened, Duration::from_secs(10)).await,
        "the SSE stream ended"
    );
    assert!(
        ends_within(owners, Duration::from_secs(10)).await,
        "the owner's stream ended"
    );
    assert_eq!(
        recv(&mut ws).await,
        Err(Some(1001)),
        "the WebSocket was closed, going away"
    );
    let late = sse(&owner_key).await.unwrap();
    assert_eq!(late.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(late.headers().contains_key("retry-after"));
    app.stop().await;
}

/// The agent's `online` and `last_seen_at`, as its read and the owner's listing show them
/// (asked until both agree: presence may change between the two requests).
async fn presence(app: &TestApp, owner_key: &str, agent: &str) -> (Value, Value) {
    for _ in 0..50 {
        let one = app.get(&format!("/v1/agents/{agent}"), owner_key).await;
        assert_eq!(one.status, StatusCode::OK, "{:?}", one.body);
        let all = app.get("/v1/agents", owner_key).await;
        let listed = all.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == agent)
            .unwrap()
            .clone();
        if listed["online"] == one.body["online"] {
            return (one.body["online"].clone(), one.body["last_seen_at"].clone());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the agent's read and the listing never agreed on its presence");
}

#[tokio::test]
async fn an_agent_with_an_open_stream_is_online_and_without_redis_presence_is_unknown() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner_key) = app.owner("watching").await;
    let (agent, agent_key) = app.agent(&owner_key, "present").await;
    let (online, seen) = presence(&app, &owner_key, &agent).await;
    assert_eq!((online, seen), (json!(false), Value::Null), "never seen");

    let mut ws = connect(&app, &agent_key).await;
    let mut seen = Value::Null;
    for _ in 0..100 {
        let (online, last) = presence(&app, &owner_key, &agent).await;
        if online == json!(true) {
            seen = last;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen.is_string(),
        "online, and seen, while its stream is open"
    );
    ws.close(None).await.unwrap();
    drop(ws);
    let mut offline = false;
    for _ in 0..100 {
        let (online, last) = presence(&app, &owner_key, &agent).await;
        if online == json!(false) {
            assert!(last.is_string(), "last seen stays known");
            offline = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(offline, "offline once its stream closed");
    app.stop().await;

    // Without Redis, presence is not known, and shown as such.
    let app = TestApp::spawn(
        &db,
        Options {
            redis: false,
            ..Options::default()
        },
    )
    .await;
    let _ws = connect(&app, &agent_key).await;
    let (online, seen) = presence(&app, &owner_key, &agent).await;
    assert_eq!((online, seen), (Value::Null, Value::Null));
    app.stop().await;
}
