//! Budgets at three levels and the rest of the wallet rules over HTTP: agent and owner
//! budgets set and read, a denial naming its level, the summary's budget left at each level,
//! a monthly limit, and an approval that waited too long.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, Reply, TestApp};

async fn put(app: &TestApp, path: &str, key: &str, body: serde_json::Value) -> Reply {
    app.call(Method::PUT, path, Some(key), Some(body), None)
        .await
}

#[tokio::test]
async fn budgets_at_three_levels_are_set_read_and_enforced_over_http() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, agent_key) = app.agent(&owner, "buyer").await;
    let (other, other_key) = app.agent(&owner, "seller").await;
    let a = app.wallet(&owner, &agent, "USD", 1_000).await;
    let b = app.wallet(&owner, &other, "USD", 1_000).await;

    // Bad budgets are 4xx with a reason.
    let path = format!("/v1/agents/{agent}/budget");
    for (body, status, code) in [
        (
            json!({"USD": {"daily_limit": -1}}),
            StatusCode::BAD_REQUEST,
            "invalid_budget",
        ),
        (
            json!({"usd": {"daily_limit": 1}}),
            StatusCode::BAD_REQUEST,
            "invalid_budget",
        ),
        (
            json!({"XYZ": {"daily_limit": 1}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_asset",
        ),
        (
            json!({"USD": {"weekly_limit": 1}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"USD": {"daily_limit": 1.5}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (json!([1]), StatusCode::BAD_REQUEST, "invalid_request"),
    ] {
        let r = put(&app, &path, &owner, body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (status, code.to_owned()),
            "{body}: {:?}",
            r.body
        );
    }
    let r = put(&app, &path, &agent_key, json!({"USD": {"daily_limit": 1}})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let (_, stranger) = app.owner("Other").await;
    let r = put(&app, &path, &stranger, json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get("/v1/owners/me/budget", &agent_key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = put(
        &app,
        &path,
        &owner,
        json!({"USD": {"daily_limit": 100, "monthly_limit": 1000}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"USD": {"max_per_transaction": null, "daily_limit": 100, "monthly_limit": 1000}})
    );
    let r = app.get(&path, &agent_key).await;
    assert_eq!(
        r.body["USD"]["daily_limit"], 100,
        "an agent reads its own budget"
    );
    let r = put(
        &app,
        "/v1/owners/me/budget",
        &owner,
        json!({"USD": {"daily_limit": 150}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        app.get("/v1/owners/me/budget", &owner).await.body["USD"]["daily_limit"],
        150
    );

    // The agent's daily limit counts all its wallets; the owner's all the agents'.
    let r = app.transfer(&agent_key, &a, &b, 60, "t-1").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["budget"]["agent"]["daily_remaining"], 40);
    assert_eq!(r.body["budget"]["owner"]["daily_remaining"], 90);
    let r = app.transfer(&agent_key, &a, &b, 41, "t-2").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "policy_denied")
    );
    assert_eq!(
        (
            r.body["error"]["level"].as_str(),
            r.body["error"]["rule"].as_str()
        ),
        (Some("agent"), Some("daily_limit"))
    );
    assert_eq!(r.body["error"]["budget"]["agent"]["daily_remaining"], 40);
    let r = app.transfer(&other_key, &b, &a, 91, "t-3").await;
    assert_eq!(r.body["error"]["level"], "owner", "{:?}", r.body);
    let r = app.transfer(&other_key, &b, &a, 90, "t-4").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // The summary says what is left at each level.
    let s = app.get(&format!("/v1/wallets/{a}/summary"), &owner).await;
    assert_eq!(s.status, StatusCode::OK, "{:?}", s.body);
    assert_eq!(s.body["today"]["spent"], 60);
    assert_eq!(
        s.body["budget"]["agent"],
        json!({"daily_remaining": 40, "monthly_remaining": 940})
    );
    assert_eq!(
        s.body["budget"]["owner"],
        json!({"daily_remaining": 0, "monthly_remaining": null})
    );

    // Replacing a budget with `{}` removes it.
    let r = put(&app, &path, &owner, json!({})).await;
    assert_eq!(r.body, json!({}));
    let s = app.get(&format!("/v1/wallets/{a}/summary"), &owner).await;
    assert_eq!(s.body["budget"]["agent"], serde_json::Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn a_monthly_limit_holds_and_an_approval_that_waited_too_long_expires() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, agent_key) = app.agent(&owner, "buyer").await;
    let a = app.wallet(&owner, &agent, "USD", 1_000).await;
    let b = app.wallet(&owner, &agent, "USD", 0).await;
    let policy = format!("/v1/wallets/{a}/policy");
    for bad in [
        json!({"approval_timeout_s": 0}),
        json!({"approval_timeout_s": 2_592_001}),
        json!({"monthly_limit": -5}),
    ] {
        let r = put(&app, &policy, &owner, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
    }
    let r = put(
        &app,
        &policy,
        &owner,
        json!({"monthly_limit": 100, "approval_above": 50, "approval_timeout_s": 1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.body["monthly_limit"].as_i64(),
            r.body["approval_timeout_s"].as_i64()
        ),
        (Some(100), Some(1))
    );

    let r = app.transfer(&agent_key, &a, &b, 40, "m-1").await;
    assert_eq!(r.body["budget"]["monthly_remaining"], 60, "{:?}", r.body);
    let r = app.transfer(&agent_key, &a, &b, 61, "m-2").await;
    assert_eq!(
        (
            r.body["error"]["level"].as_str(),
            r.body["error"]["rule"].as_str()
        ),
        (Some("wallet"), Some("monthly_limit"))
    );

    // Above the threshold: it waits, one second at most.
    let p = app.transfer(&agent_key, &a, &b, 55, "m-3").await;
    assert_eq!(
        (p.status, p.str("status")),
        (StatusCode::ACCEPTED, "pending_approval".into()),
        "{:?}",
        p.body
    );
    assert!(!p.str("approval_deadline").is_empty());
    let id = p.str("id");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let r = app.get(&format!("/v1/transactions/{id}"), &owner).await;
    assert_eq!(r.str("status"), "expired", "read as expired, swept or not");
    let r = app
        .call(
            Method::POST,
            &format!("/v1/transactions/{id}/approve"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "approval_expired")
    );
    // The sweeper ends it and tells the owner; nothing moved.
    let mut told = false;
    for _ in 0..50 {
        let n = app.get("/v1/notifications", &owner).await;
        if n.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "approval_expired")
        {
            told = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(told, "the owner was told the approval expired");
    let r = app.get("/v1/transactions?status=expired", &owner).await;
    assert_eq!(r.body["items"][0]["id"], id.as_str());
    let r = app.get(&format!("/v1/wallets/{a}/balance"), &owner).await;
    assert_eq!(r.body["balance"], 960);
    let report = waiaas_postgres::reconcile(&db.db).await.unwrap();
    assert!(report.is_consistent(), "{report}");
    app.stop().await;
}
