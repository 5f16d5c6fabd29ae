//! Tenant isolation: another tenant's agents, wallets and transactions are 404s.

use reqwest::{Method, StatusCode};
use serde_json::json;
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

#[tokio::test]
async fn owners_and_agents_only_ever_see_their_own() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, alice) = app.owner("alice").await;
    let (_, bob) = app.owner("bob").await;
    let (a_agent, a_agent_key) = app.agent(&alice, "a-bot").await;
    let (b_agent, b_agent_key) = app.agent(&bob, "b-bot").await;
    let a_wallet = app.wallet(&alice, &a_agent, "USD", 500).await;
    let b_wallet = app.wallet(&bob, &b_agent, "USD", 500).await;
    let t = app
        .transfer(&a_agent_key, &a_wallet, &b_wallet, 10, "x-1")
        .await;
    assert_eq!(
        t.status,
        StatusCode::CREATED,
        "paying another tenant's wallet by id is allowed: {:?}",
        t.body
    );
    let tx = t.str("id");

    for path in [
        format!("/v1/agents/{a_agent}"),
        format!("/v1/wallets/{a_wallet}"),
        format!("/v1/wallets/{a_wallet}/balance"),
        format!("/v1/wallets/{a_wallet}/policy"),
        format!("/v1/wallets/{a_wallet}/transactions"),
        format!("/v1/wallets/{a_wallet}/summary"),
    ] {
        assert_eq!(
            app.get(&path, &bob).await.status,
            StatusCode::NOT_FOUND,
            "bob reads {path}"
        );
        assert_eq!(
            app.get(&path, &b_agent_key).await.status,
            StatusCode::NOT_FOUND,
            "bob's agent reads {path}"
        );
    }
    assert_eq!(
        app.get(&format!("/v1/transactions/{tx}"), &bob)
            .await
            .status,
        StatusCode::OK,
        "the receiving tenant sees a transfer into its wallet"
    );
    let steal = app
        .transfer(&b_agent_key, &a_wallet, &b_wallet, 10, "x-2")
        .await;
    assert_eq!(steal.status, StatusCode::NOT_FOUND, "{:?}", steal.body);
    let dep = app
        .call(
            Method::POST,
            &format!("/v1/wallets/{a_wallet}/deposits"),
            Some(&bob),
            Some(json!({ "amount": 5 })),
            Some("deposit-5"),
        )
        .await;
    assert_eq!(dep.status, StatusCode::NOT_FOUND);
    let key = app
        .post(&format!("/v1/agents/{a_agent}/keys"), &bob, json!({}))
        .await;
    assert_eq!(key.status, StatusCode::NOT_FOUND);
    let wallet = app
        .post(
            &format!("/v1/agents/{a_agent}/wallets"),
            &bob,
            json!({ "asset": "USD" }),
        )
        .await;
    assert_eq!(wallet.status, StatusCode::NOT_FOUND);
    let del = app
        .call(
            Method::DELETE,
            &format!("/v1/agents/{a_agent}"),
            Some(&bob),
            None,
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/v1/agents", &bob).await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Within a tenant, the agent may not do the owner's work.
    let policy = app
        .call(
            Method::PUT,
            &format!("/v1/wallets/{a_wallet}/policy"),
            Some(&a_agent_key),
            Some(json!({ "daily_limit": 1 })),
            None,
        )
        .await;
    assert_eq!(policy.status, StatusCode::FORBIDDEN, "{:?}", policy.body);
    let own_deposit = app
        .call(
            Method::POST,
            &format!("/v1/wallets/{a_wallet}/deposits"),
            Some(&a_agent_key),
            Some(json!({ "amount": 5 })),
            Some("deposit-5"),
        )
        .await;
    assert_eq!(own_deposit.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/v1/audit-logs", &a_agent_key).await.status,
        StatusCode::FORBIDDEN
    );
    let owner_spends = app.transfer(&alice, &a_wallet, &b_wallet, 1, "x-3").await;
    assert_eq!(owner_spends.status, StatusCode::FORBIDDEN);
    app.stop().await;
}
