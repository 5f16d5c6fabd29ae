//! Probes, metrics, the OpenAPI document, the event stream and approvals.

use axum::http::{StatusCode, header};
use futures::StreamExt;
use serde_json::json;
use waiaas_domain::errors::ApprovalError;
use waiaas_domain::ports::EventBounds;
use waiaas_domain::{Event, TransactionStatus};

use super::*;

#[tokio::test]
async fn liveness_needs_no_credentials() {
    let w = World::new();
    let (status, _, body) =
        send(Mocks::new(&w).app(), request("GET", "/healthz", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn readiness_is_degraded_without_redis_and_503_without_the_database() {
    let w = World::new();
    let cases = [
        (
            ComponentStatus::Up,
            ComponentStatus::Up,
            StatusCode::OK,
            "ready",
            "up",
        ),
        (
            ComponentStatus::Up,
            ComponentStatus::Disabled,
            StatusCode::OK,
            "ready",
            "disabled",
        ),
        (
            ComponentStatus::Up,
            ComponentStatus::Down("timeout".into()),
            StatusCode::OK,
            "degraded",
            "down: timeout",
        ),
        (
            ComponentStatus::Down("refused".into()),
            ComponentStatus::Up,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "up",
        ),
    ];
    for (database, redis, expected, state, redis_text) in cases {
        let mut m = Mocks::new(&w);
        m.readiness = Readiness { database, redis };
        let (status, _, body) = send(m.app(), request("GET", "/readyz", None, None)).await;
        assert_eq!(status, expected);
        assert_eq!(body["status"], state);
        assert_eq!(body["redis"], redis_text);
    }
}

#[tokio::test]
async fn metrics_are_served_as_prometheus_text() {
    let w = World::new();
    let (status, headers, body) =
        send(Mocks::new(&w).app(), request("GET", "/metrics", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(body.as_str().unwrap().contains("waiaas_up 1"));
}

/// Every route of the router, as `(method, path)`.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/v1/owners"),
    ("post", "/v1/sessions"),
    ("delete", "/v1/sessions/current"),
    ("post", "/v1/agents"),
    ("get", "/v1/agents"),
    ("get", "/v1/agents/{id}"),
    ("patch", "/v1/agents/{id}"),
    ("delete", "/v1/agents/{id}"),
    ("post", "/v1/agents/{id}/keys"),
    ("get", "/v1/agents/{id}/keys"),
    ("delete", "/v1/agents/{id}/keys/{key_id}"),
    ("get", "/v1/owners/me/keys"),
    ("post", "/v1/owners/me/keys"),
    ("delete", "/v1/owners/me/keys/{key_id}"),
    ("get", "/v1/agents/{id}/budget"),
    ("put", "/v1/agents/{id}/budget"),
    ("get", "/v1/owners/me/budget"),
    ("put", "/v1/owners/me/budget"),
    ("post", "/v1/agents/{id}/wallets"),
    ("get", "/v1/wallets"),
    ("get", "/v1/wallets/{id}"),
    ("get", "/v1/wallets/{id}/balance"),
    ("get", "/v1/wallets/{id}/summary"),
    ("get", "/v1/wallets/{id}/policy"),
    ("put", "/v1/wallets/{id}/policy"),
    ("post", "/v1/wallets/{id}/deposits"),
    ("post", "/v1/wallets/{id}/transfers"),
    ("post", "/v1/wallets/{id}/sweep"),
    ("get", "/v1/wallets/{id}/transactions"),
    ("get", "/v1/wallets/{id}/events"),
    ("get", "/v1/ws"),
    ("post", "/v1/wallets/{id}/mandates"),
    ("get", "/v1/wallets/{id}/mandates"),
    ("get", "/v1/mandates/{id}"),
    ("delete", "/v1/mandates/{id}"),
    ("post", "/v1/wallets/{id}/holds"),
    ("get", "/v1/wallets/{id}/holds"),
    ("get", "/v1/holds/{id}"),
    ("post", "/v1/holds/{id}/capture"),
    ("post", "/v1/holds/{id}/void"),
    ("get", "/v1/transactions"),
    ("get", "/v1/home"),
    ("get", "/v1/transactions/{id}"),
    ("post", "/v1/transactions/{id}/approve"),
    ("post", "/v1/transactions/{id}/reject"),
    ("get", "/v1/audit-logs"),
    ("get", "/v1/ledger/head"),
    ("get", "/v1/notifications"),
    ("post", "/v1/notifications/{id}/read"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks"),
    ("get", "/v1/webhooks/{id}"),
    ("patch", "/v1/webhooks/{id}"),
    ("delete", "/v1/webhooks/{id}"),
    ("post", "/v1/webhooks/{id}/rotate-secret"),
    ("get", "/v1/webhooks/{id}/deliveries"),
    ("post", "/v1/webhooks/{id}/deliveries/{delivery_id}/retry"),
];

#[tokio::test]
async fn the_console_is_served_without_a_credential_under_a_strict_content_policy() {
    let w = World::new();
    for (path, kind) in [
        ("/console", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let (status, headers, _) =
            send(Mocks::new(&w).app(), request("GET", path, None, None)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        let policy = header("content-security-policy");
        // Only its own origin: no inline script, no CDN, nothing framing it.
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert_eq!(header("x-content-type-options"), "nosniff");
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_nothing_else() {
    let w = World::new();
    let (status, _, doc) = send(
        Mocks::new(&w).app(),
        request("GET", "/openapi.json", None, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            assert!(
                ROUTES.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is documented but not routed"
            );
            documented += 1;
        }
    }
    for (method, path) in ROUTES {
        assert!(
            paths[*path].get(*method).is_some(),
            "{method} {path} is not documented"
        );
        // Every documented route also answers (not the router's own 404 or 405).
        let uri = path.replace("{id}", &w.wallet.to_string());
        let m = Mocks::new(&w);
        let (status, _, body) =
            send(m.app(), request(&method.to_uppercase(), &uri, None, None)).await;
        let unrouted =
            code(&body) == "method_not_allowed" || body["error"]["message"] == "no such route";
        assert!(!unrouted, "{method} {path} is not routed: {status}");
    }
    assert_eq!(documented, ROUTES.len());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// A wallet as the repository returns it.
fn wallet_of(id: WalletId, agent_id: AgentId, owner_id: OwnerId) -> waiaas_domain::Wallet {
    waiaas_domain::Wallet {
        id,
        agent_id,
        owner_id,
        asset: AssetCode::parse("USD").unwrap(),
        name: None,
        balance: Money::ZERO,
        held: Money::ZERO,
        version: 1,
        created_at: now(),
    }
}

/// An outbox event of `tx` at place `id`.
fn event(id: i64, tx: &waiaas_domain::Transaction) -> Event {
    Event {
        id,
        kind: format!("transaction.{}", tx.status.as_str()),
        created_at: now(),
        owner_id: waiaas_domain::OwnerId::new(),
        subject: waiaas_domain::Subject::Transaction(Box::new(tx.clone())),
    }
}

#[tokio::test]
async fn the_event_stream_resumes_after_the_last_event_in_order_without_duplicates() {
    let w = World::new();
    let mine = spend(w.wallet, w.wallet2, 10, TransactionStatus::Completed);
    let theirs = spend(w.wallet2, w.foreign, 10, TransactionStatus::Completed);
    let uri = format!("/v1/wallets/{}/events", w.wallet);
    let mut m = Mocks::new(&w);
    let wallet = w.wallet;
    let agent = w.agent;
    let owner = w.owner;
    m.wallets
        .expect_get()
        .returning(move |_| Ok(Some(wallet_of(wallet, agent, owner))));
    // Live: one already sent from storage (7), another wallet's (9), a new one (8 < 9 is
    // fine: places only increase per stream), then the feed ends (the stream fell behind).
    let live = vec![event(7, &mine), event(9, &theirs), event(8, &mine)];
    m.feed
        .expect_live()
        .times(1)
        .returning(move || futures::stream::iter(live.clone()).boxed());
    m.feed
        .expect_live()
        .returning(|| futures::stream::pending().boxed());
    // Storage after 5: 6 and 7. After resubscribing, storage fails: the stream ends (the
    // client reconnects with its last id).
    m.feed.expect_bounds().returning(|| {
        Ok(EventBounds {
            head: 9,
            pruned_through: 3,
        })
    });
    let stored = vec![event(6, &mine), event(7, &mine)];
    m.feed
        .expect_after()
        .withf(move |after, w, _| *after == 5 && *w == wallet)
        .times(1)
        .returning(move |_, _, _| Ok(stored.clone()));
    m.feed
        .expect_after()
        .withf(|after, _, _| *after == 8)
        .returning(|_, _, _| Err(waiaas_domain::RepoError(anyhow::anyhow!("down"))));
    let mut req = request("GET", &uri, Some(AGENT_KEY), None);
    req.headers_mut()
        .insert("last-event-id", header::HeaderValue::from_static("5"));
    let (status, headers, body) = send(m.app(), req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
    let text = body.as_str().unwrap();
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids, ["6", "7", "8"], "{text}");
    assert!(text.starts_with("event: transaction.completed\n"), "{text}");
    assert_eq!(text.matches("data: ").count(), 3, "{text}");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(first["id"], 6);
    assert_eq!(first["type"], "transaction.completed");
    assert_eq!(first["wallet_id"], wallet.to_string());
    assert_eq!(first["transaction"]["id"], mine.id.to_string());
    // The shared type clients read events with takes the data as the stream sends it.
    let typed: waiaas_api::WalletEvent = serde_json::from_value(first).unwrap();
    assert_eq!(
        (typed.id, typed.kind.as_str()),
        (6, "transaction.completed")
    );
    let tx = typed.transaction.expect("the transaction");
    assert_eq!((tx.id.to_string(), tx.amount), (mine.id.to_string(), 10));

    // Resuming below what retention deleted: some events may be gone, and the client is told.
    let mut m = Mocks::new(&w);
    m.wallets
        .expect_get()
        .returning(move |_| Ok(Some(wallet_of(wallet, agent, owner))));
    m.feed
        .expect_live()
        .returning(|| futures::stream::pending().boxed());
    m.feed.expect_bounds().returning(|| {
        Ok(EventBounds {
            head: 900,
            pruned_through: 300,
        })
    });
    let mut old = request("GET", &uri, Some(AGENT_KEY), None);
    old.headers_mut()
        .insert("last-event-id", header::HeaderValue::from_static("299"));
    let (status, _, body) = send(m.app(), old).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(code(&body), "events_expired");

    // A Last-Event-ID that is not an event's id is the client's mistake.
    for value in ["abc", "", " 5", "-1", "null", "1234567890123456789"] {
        let mut bad = request("GET", &uri, Some(AGENT_KEY), None);
        bad.headers_mut().insert(
            "last-event-id",
            header::HeaderValue::from_str(value).unwrap(),
        );
        let (status, _, body) = send(Mocks::new(&w).app(), bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{value:?}");
        assert_eq!(code(&body), "invalid_last_event_id");
    }
}

#[tokio::test]
async fn approving_a_transaction_no_longer_pending_is_a_409() {
    let w = World::new();
    let mut m = Mocks::new(&w);
    m.transactions
        .expect_decide()
        .withf(|c| c.approve)
        .returning(|_| Err(ApprovalError::NotPending(TransactionStatus::Completed)));
    let uri = format!("/v1/transactions/{}/approve", TransactionId::new());
    let (status, _, body) = send(m.app(), request("POST", &uri, Some(OWNER_KEY), None)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "not_pending");

    let uri = format!("/v1/transactions/{}/reject", TransactionId::new());
    let (status, _, _) = send(
        Mocks::new(&w).app(),
        request("POST", &uri, Some(AGENT_KEY), None),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_answers_given_before_a_handler_runs_are_documented_on_every_operation() {
    let w = World::new();
    let doc = serde_json::to_value(crate::openapi::document()).unwrap();
    for (method, path) in ROUTES {
        let op = &doc["paths"][*path][*method];
        let responses = op["responses"].as_object().unwrap();
        let uri = path.replace("{id}", &w.wallet.to_string());
        let verb = method.to_uppercase();
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        if secured {
            // No credential: a 401, documented.
            let (status, _, _) = send(Mocks::new(&w).app(), request(&verb, &uri, None, None)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{verb} {path}");
            assert!(
                responses.contains_key("401"),
                "{verb} {path} does not list 401"
            );
        }
        if op.get("requestBody").is_some() {
            // A body that is not JSON: a 415, documented.
            let token = if *path == "/v1/owners" {
                "boot-secret"
            } else {
                OWNER_KEY
            };
            let req = Request::builder()
                .method(verb.as_str())
                .uri(&uri)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("{}"))
                .unwrap();
            let (status, _, _) = send(Mocks::new(&w).app(), req).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{verb} {path}");
            for listed in ["400", "413", "415"] {
                assert!(
                    responses.contains_key(listed),
                    "{verb} {path} does not list {listed}"
                );
            }
        }
        if path.starts_with("/v1/") {
            for listed in ["429", "503"] {
                assert!(
                    responses[listed]["headers"]["Retry-After"].is_object(),
                    "{verb} {path}: {listed} without Retry-After"
                );
            }
        }
    }
}
