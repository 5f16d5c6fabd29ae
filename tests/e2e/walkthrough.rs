//! The whole contract, in the order a new team would use it.

use std::time::Duration;

use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::json;
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_team_walks_through_the_whole_api() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let mut reconcile = waiaas_app::Settings::default();
    reconcile.database.url = db.url.clone();
    walk(&app, &reconcile).await;
    app.stop().await;
}

/// The walkthrough, on an instance already running; `reconcile` reaches its database.
pub(crate) async fn walk(app: &TestApp, reconcile: &waiaas_app::Settings) {
    // Owners, sessions, agents, keys.
    let (owner_id, owner_key) = app.owner("Acme").await;
    let s = app.post("/v1/sessions", &owner_key, json!({})).await;
    assert_eq!(s.status, StatusCode::CREATED, "{:?}", s.body);
    let owner_token = s.str("token");
    assert!(s.body["expires_at"].is_string());
    let a = app
        .post("/v1/agents", &owner_token, json!({ "name": "buyer" }))
        .await;
    assert_eq!(
        (a.status, a.str("status")),
        (StatusCode::CREATED, "active".to_owned())
    );
    let agent_id = a.str("id");
    let k = app
        .post(
            &format!("/v1/agents/{agent_id}/keys"),
            &owner_token,
            json!({}),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED);
    let agent_key = k.str("api_key");
    let listed = app.get("/v1/agents", &owner_token).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.get(&format!("/v1/agents/{agent_id}"), &owner_token)
            .await
            .str("name"),
        "buyer"
    );
    let agent_token = app
        .post("/v1/sessions", &agent_key, json!({}))
        .await
        .str("token");

    // Wallets and a policy.
    let w = app
        .post(
            &format!("/v1/agents/{agent_id}/wallets"),
            &owner_key,
            json!({ "asset": "USD", "name": "ops" }),
        )
        .await;
    assert_eq!(w.status, StatusCode::CREATED, "{:?}", w.body);
    assert_eq!(
        (w.body["balance"].as_i64(), w.body["version"].as_i64()),
        (Some(0), Some(1))
    );
    let wallet = w.str("id");
    let other = app.wallet(&owner_key, &agent_id, "USD", 0).await;
    let p = app
        .call(
            Method::PUT,
            &format!("/v1/wallets/{wallet}/policy"),
            Some(&owner_key),
            Some(json!({ "max_per_transaction": 500, "daily_limit": 1000, "approval_above": 300, "blocked_destinations": ["evil-corp"] })),
            None,
        )
        .await;
    assert_eq!(
        (p.status, p.body["version"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{:?}",
        p.body
    );
    assert_eq!(
        app.get(&format!("/v1/wallets/{wallet}/policy"), &agent_token)
            .await
            .body["daily_limit"]
            .as_i64(),
        Some(1000)
    );

    // Money in.
    let d = app
        .call(
            Method::POST,
            &format!("/v1/wallets/{wallet}/deposits"),
            Some(&owner_key),
            Some(json!({ "amount": 2000 })),
            Some("deposit-2000"),
        )
        .await;
    assert_eq!(
        (d.status, d.str("status")),
        (StatusCode::CREATED, "completed".to_owned())
    );
    let b = app
        .get(&format!("/v1/wallets/{wallet}/balance"), &agent_token)
        .await;
    assert_eq!(
        (b.body["balance"].as_i64(), b.str("asset")),
        (Some(2000), "USD".to_owned())
    );

    // Live events: subscribe before moving money.
    let events = app
        .client
        .get(format!("{}/v1/wallets/{wallet}/events", app.base))
        .bearer_auth(&agent_token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let mut events = events.bytes_stream();

    // Money out: completed, held, denied, insufficient.
    let t = app
        .transfer(&agent_token, &wallet, &other, 100, "t-1")
        .await;
    assert_eq!(
        (t.status, t.str("status")),
        (StatusCode::CREATED, "completed".to_owned()),
        "{:?}",
        t.body
    );
    let first_tx = t.str("id");
    let held = app
        .transfer(&agent_token, &wallet, &other, 400, "t-2")
        .await;
    assert_eq!(
        (held.status, held.str("status")),
        (StatusCode::ACCEPTED, "pending_approval".to_owned()),
        "{:?}",
        held.body
    );
    let denied = app
        .transfer(&agent_token, &wallet, &other, 600, "t-3")
        .await;
    assert_eq!(
        (denied.status, denied.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "policy_denied".to_owned()),
        "{:?}",
        denied.body
    );
    assert_eq!(denied.body["error"]["rule"], "max_per_transaction");
    let blocked = app
        .call(
            Method::POST,
            &format!("/v1/wallets/{wallet}/transfers"),
            Some(&agent_token),
            Some(json!({ "amount": 5, "destination": "evil-corp" })),
            Some("t-4"),
        )
        .await;
    assert_eq!(
        blocked.body["error"]["rule"], "blocked_destinations",
        "{:?}",
        blocked.body
    );
    let paid = app
        .call(
            Method::POST,
            &format!("/v1/wallets/{wallet}/transfers"),
            Some(&agent_token),
            Some(json!({ "amount": 50, "destination": "shop-9", "memo": "coffee" })),
            Some("t-5"),
        )
        .await;
    assert_eq!(
        (paid.status, paid.str("kind")),
        (StatusCode::CREATED, "payment".to_owned()),
        "{:?}",
        paid.body
    );
    let poor = app
        .transfer(&agent_token, &other, &wallet, 1_000, "t-6")
        .await;
    assert_eq!(
        (poor.status, poor.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_funds".to_owned()
        ),
        "{:?}",
        poor.body
    );

    let event = tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = String::new();
        while let Some(chunk) = events.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains(&first_tx) {
                return seen;
            }
        }
        seen
    })
    .await
    .expect("an event within 10 s");
    assert!(event.contains("event: transaction"), "{event}");

    // Approval.
    let approved = app
        .post(
            &format!("/v1/transactions/{}/approve", held.str("id")),
            &owner_key,
            json!({}),
        )
        .await;
    assert_eq!(
        (approved.status, approved.str("status")),
        (StatusCode::OK, "completed".to_owned()),
        "{:?}",
        approved.body
    );
    // Approving again (a lost answer, retried) replays; rejecting now is a conflict.
    let again = app
        .post(
            &format!("/v1/transactions/{}/approve", held.str("id")),
            &owner_key,
            json!({}),
        )
        .await;
    assert_eq!(
        (again.status, again.body.clone()),
        (StatusCode::OK, approved.body.clone())
    );
    let reject = app
        .post(
            &format!("/v1/transactions/{}/reject", held.str("id")),
            &owner_key,
            json!({}),
        )
        .await;
    assert_eq!(reject.status, StatusCode::CONFLICT);
    assert_eq!(
        app.get(&format!("/v1/wallets/{wallet}/balance"), &agent_token)
            .await
            .body["balance"]
            .as_i64(),
        Some(2000 - 100 - 400 - 50)
    );
    assert_eq!(
        app.get(&format!("/v1/transactions/{first_tx}"), &owner_key)
            .await
            .body["amount"]
            .as_i64(),
        Some(100)
    );

    // History, summary, audit, notifications.
    let page1 = app
        .get(
            &format!("/v1/wallets/{wallet}/transactions?limit=3"),
            &agent_token,
        )
        .await;
    assert_eq!(
        page1.body["items"].as_array().map(Vec::len),
        Some(3),
        "{:?}",
        page1.body
    );
    let cursor = page1.str("next_cursor");
    let page2 = app
        .get(
            &format!("/v1/wallets/{wallet}/transactions?limit=3&cursor={cursor}"),
            &agent_token,
        )
        .await;
    assert!(
        page2.body["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty())
    );
    let summary = app
        .get(&format!("/v1/wallets/{wallet}/summary"), &agent_token)
        .await;
    assert_eq!(
        summary.body["today"]["spent"].as_i64(),
        Some(550),
        "{:?}",
        summary.body
    );
    assert_eq!(summary.body["today"]["count"].as_i64(), Some(3));
    // The owner's home shows the same spend for that wallet (the roles test walks this as
    // the application role under row-level security).
    let home = app.get("/v1/home", &owner_key).await;
    assert_eq!(home.status, StatusCode::OK, "{:?}", home.body);
    let in_home = home.body["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["wallets"].as_array().cloned().unwrap_or_default())
        .find(|w| w["id"] == wallet.as_str())
        .unwrap_or_else(|| panic!("the wallet is in the home: {:?}", home.body));
    assert_eq!(in_home["today"], summary.body["today"], "{:?}", home.body);
    let audit = app
        .get(
            &format!("/v1/audit-logs?resource_type=wallet&resource_id={wallet}"),
            &owner_key,
        )
        .await;
    assert!(
        audit.body["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|e| e["action"] == "wallet.policy.set")),
        "{:?}",
        audit.body
    );
    let notes = app.get("/v1/notifications", &owner_key).await;
    assert_eq!(
        notes.body["unread"].as_i64(),
        Some(3),
        "a hold and two denials: {:?}",
        notes.body
    );
    let note = notes.body["items"][0]["id"].as_str().unwrap().to_owned();
    let read = app
        .post(
            &format!("/v1/notifications/{note}/read"),
            &owner_key,
            json!({}),
        )
        .await;
    assert_eq!(
        (read.status, read.body["unread"].as_i64()),
        (StatusCode::OK, Some(2)),
        "{:?}",
        read.body
    );
    assert_eq!(
        app.get("/v1/notifications", &owner_key).await.body["unread"].as_i64(),
        Some(2)
    );

    // Revocation takes effect at once.
    let del = app
        .call(
            Method::DELETE,
            "/v1/sessions/current",
            Some(&agent_token),
            None,
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/v1/wallets/{wallet}/balance"), &agent_token)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let suspended = app
        .call(
            Method::PATCH,
            &format!("/v1/agents/{agent_id}"),
            Some(&owner_key),
            Some(json!({ "status": "suspended" })),
            None,
        )
        .await;
    assert_eq!(suspended.str("status"), "suspended");
    let refused = app.transfer(&agent_key, &wallet, &other, 1, "t-7").await;
    assert_eq!(
        (refused.status, refused.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "agent_not_active".to_owned()
        ),
        "{:?}",
        refused.body
    );
    let gone = app
        .call(
            Method::DELETE,
            &format!("/v1/agents/{agent_id}"),
            Some(&owner_key),
            None,
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/v1/wallets/{wallet}/balance"), &agent_key)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get(&format!("/v1/wallets/{wallet}/balance"), &owner_key)
            .await
            .status,
        StatusCode::OK,
        "the owner still sees the money"
    );

    // Operations endpoints.
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None, None)
            .await
            .status,
        StatusCode::OK
    );
    let ready = app.call(Method::GET, "/readyz", None, None, None).await;
    assert_eq!(
        (ready.status, ready.str("status")),
        (StatusCode::OK, "ready".to_owned()),
        "{:?}",
        ready.body
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains("waiaas_http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("waiaas_breaker_state{dependency=\"redis\"} 0"),
        "the breaker's state is exported from the start: {metrics}"
    );
    let openapi = app
        .call(Method::GET, "/openapi.json", None, None, None)
        .await;
    assert!(openapi.body["paths"]["/v1/wallets/{id}/transfers"].is_object());
    let _ = owner_id;

    let mut settings = reconcile.clone();
    settings.database.min_connections = 0;
    settings.database.max_connections = 2;
    let report = waiaas_app::commands::reconcile(&settings)
        .await
        .expect("reconcile ran");
    assert!(report, "the ledger reconciles after the walkthrough");
}
