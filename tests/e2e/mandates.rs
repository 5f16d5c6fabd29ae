//! Mandates over HTTP: issued, listed, read, used above the approval threshold, refused
//! outside their terms with the reason, and revoked.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, Reply, TestApp};

fn later(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339()
}

async fn pay(app: &TestApp, key: &str, wallet: &str, body: Value, idem: &str) -> Reply {
    app.call(
        Method::POST,
        &format!("/v1/wallets/{wallet}/transfers"),
        Some(key),
        Some(body),
        Some(idem),
    )
    .await
}

#[tokio::test]
async fn an_owner_pre_approves_purchases_and_the_agent_spends_within_them() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, agent_key) = app.agent(&owner, "buyer").await;
    let a = app.wallet(&owner, &agent, "USD", 1_000).await;
    let b = app.wallet(&owner, &agent, "USD", 0).await;
    let r = app
        .call(
            Method::PUT,
            &format!("/v1/wallets/{a}/policy"),
            Some(&owner),
            Some(json!({"approval_above": 10})),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let path = format!("/v1/wallets/{a}/mandates");

    for (body, status, code) in [
        (
            json!({"max_amount": 0, "expires_at": later(60)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_mandate",
        ),
        (
            json!({"max_amount": 5, "expires_at": later(-60)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_mandate",
        ),
        (
            json!({"max_amount": 5, "expires_at": later(400 * 86_400)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_mandate",
        ),
        (
            json!({"max_amount": 5, "max_uses": 0, "expires_at": later(60)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_mandate",
        ),
        (
            json!({"max_amount": 5, "to_wallet_id": b, "destination": "x", "expires_at": later(60)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_mandate",
        ),
        (
            json!({"max_amount": 5, "to_wallet_id": a, "expires_at": later(60)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_mandate",
        ),
        (
            json!({"max_amount": 5, "destination": "bad dest", "expires_at": later(60)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_mandate",
        ),
        (
            json!({"max_amount": 5}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"max_amount": 5, "expires_at": "soon"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ] {
        let r = app.post(&path, &owner, body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (status, code.to_owned()),
            "{body}: {:?}",
            r.body
        );
    }
    let r = app
        .post(
            &path,
            &agent_key,
            json!({"max_amount": 5, "expires_at": later(60)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let m = app
        .post(
            &path,
            &owner,
            json!({"max_amount": 30, "total_amount": 50, "max_uses": 3,
            "to_wallet_id": b, "expires_at": later(3_600)}),
        )
        .await;
    assert_eq!(m.status, StatusCode::CREATED, "{:?}", m.body);
    assert_eq!(
        (
            m.str("status"),
            m.body["uses_left"].as_i64(),
            m.body["remaining"].as_i64()
        ),
        ("active".into(), Some(3), Some(50))
    );
    let id = m.str("id");

    // Within it: completed at once, though above the approval threshold.
    let r = pay(
        &app,
        &agent_key,
        &a,
        json!({"amount": 30, "to_wallet_id": b, "mandate_id": id}),
        "p-1",
    )
    .await;
    assert_eq!(
        (r.status, r.str("status")),
        (StatusCode::CREATED, "completed".into()),
        "{:?}",
        r.body
    );
    assert_eq!(r.str("mandate_id"), id);
    // Without it: waits for the owner.
    let r = pay(
        &app,
        &agent_key,
        &a,
        json!({"amount": 30, "to_wallet_id": b}),
        "p-2",
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // Outside it: 422 naming what.
    let r = pay(
        &app,
        &agent_key,
        &a,
        json!({"amount": 21, "to_wallet_id": b, "mandate_id": id}),
        "p-3",
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "mandate_exceeded")
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("total_amount"),
        "{:?}",
        r.body
    );
    let r = pay(
        &app,
        &agent_key,
        &a,
        json!({"amount": 5, "destination": "shop", "mandate_id": id}),
        "p-4",
    )
    .await;
    assert_eq!(r.code(), "mandate_payee_mismatch");
    let r = pay(
        &app,
        &agent_key,
        &a,
        json!({"amount": 5, "to_wallet_id": b, "mandate_id": uuid::Uuid::new_v4()}),
        "p-5",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A retry of the use replays it (and does not use it twice).
    let r = pay(
        &app,
        &agent_key,
        &a,
        json!({"amount": 30, "to_wallet_id": b, "mandate_id": id}),
        "p-1",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let r = app.get(&format!("/v1/mandates/{id}"), &agent_key).await;
    assert_eq!(
        (r.body["uses_left"].as_i64(), r.body["remaining"].as_i64()),
        (Some(2), Some(20))
    );
    let r = app.get(&path, &agent_key).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let (_, stranger) = app.owner("Other").await;
    assert_eq!(
        app.get(&format!("/v1/mandates/{id}"), &stranger)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/mandates/{id}"),
            Some(&agent_key),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/mandates/{id}"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.str("status")),
        (StatusCode::OK, "revoked".into()),
        "{:?}",
        r.body
    );
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/mandates/{id}"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "revoking again answers it as it is"
    );
    let r = pay(
        &app,
        &agent_key,
        &a,
        json!({"amount": 5, "to_wallet_id": b, "mandate_id": id}),
        "p-6",
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "mandate_revoked")
    );

    // An expired mandate.
    let short = app
        .post(
            &path,
            &owner,
            json!({"max_amount": 30, "expires_at": later(1)}),
        )
        .await;
    assert_eq!(short.status, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let r = app
        .get(&format!("/v1/mandates/{}", short.str("id")), &owner)
        .await;
    assert_eq!(r.str("status"), "expired");
    let r = pay(
        &app,
        &agent_key,
        &a,
        json!({"amount": 5, "destination": "shop", "mandate_id": short.str("id")}),
        "p-7",
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "mandate_expired")
    );
    app.stop().await;
}
