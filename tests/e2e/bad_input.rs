//! Bad input is a 4xx with a reason, never a 500, and writes nothing.

use reqwest::StatusCode;
use serde_json::json;
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

#[tokio::test]
async fn malformed_wrong_and_oversized_requests_are_refused_with_a_reason() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(
        &db,
        Options {
            body_limit: 4096,
            ..Options::default()
        },
    )
    .await;
    let (_, owner) = app.owner("o").await;
    let (agent, agent_key) = app.agent(&owner, "a").await;
    let from = app.wallet(&owner, &agent, "USD", 100).await;
    let to = app.wallet(&owner, &agent, "USD", 0).await;
    let path = format!("{}/v1/wallets/{from}/transfers", app.base);
    let send = |body: String, content_type: Option<&'static str>, key: bool| {
        let mut req = app.client.post(&path).bearer_auth(&agent_key).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if key {
            req = req.header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (status, body)
        }
    };
    let json_ct = Some("application/json");
    let cases: Vec<(&str, String, Option<&'static str>, bool, StatusCode)> = vec![
        (
            "malformed JSON",
            "{\"amount\": ".into(),
            json_ct,
            true,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a string amount",
            json!({ "amount": "ten", "to_wallet_id": to }).to_string(),
            json_ct,
            true,
            StatusCode::BAD_REQUEST,
        ),
        (
            "an unknown field",
            json!({ "amount": 1, "to_wallet_id": to, "fee": 1 }).to_string(),
            json_ct,
            true,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a zero amount",
            json!({ "amount": 0, "to_wallet_id": to }).to_string(),
            json_ct,
            true,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a negative amount",
            json!({ "amount": -5, "to_wallet_id": to }).to_string(),
            json_ct,
            true,
            StatusCode::BAD_REQUEST,
        ),
        (
            "an overflowing amount",
            format!("{{\"amount\": 9223372036854775808, \"to_wallet_id\": \"{to}\"}}"),
            json_ct,
            true,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a fractional amount",
            json!({ "amount": 1.5, "to_wallet_id": to }).to_string(),
            json_ct,
            true,
            StatusCode::BAD_REQUEST,
        ),
        (
            "a bad wallet id",
            json!({ "amount": 1, "to_wallet_id": "nope" }).to_string(),
            json_ct,
            true,
            StatusCode::BAD_REQUEST,
        ),
        (
            "no idempotency key",
            json!({ "amount": 1, "to_wallet_id": to }).to_string(),
            json_ct,
            false,
            StatusCode::BAD_REQUEST,
        ),
        (
            "no content type",
            json!({ "amount": 1, "to_wallet_id": to }).to_string(),
            None,
            true,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "a huge body",
            json!({ "amount": 1, "to_wallet_id": to, "memo": "x".repeat(10_000) }).to_string(),
            json_ct,
            true,
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (what, body, ct, key, expected) in cases {
        let (status, body) = send(body, ct, key).await;
        assert_eq!(status, expected, "{what}: {body}");
        assert!(
            body["error"]["code"].is_string() && body["error"]["message"].is_string(),
            "{what}: {body}"
        );
    }
    assert_eq!(
        app.get("/v1/wallets/not-a-uuid/balance", &owner)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get(
            &format!("/v1/wallets/{from}/transactions?cursor=garbage"),
            &owner
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    let unknown_asset = app
        .post(
            &format!("/v1/agents/{agent}/wallets"),
            &owner,
            json!({ "asset": "DOGE" }),
        )
        .await;
    assert_eq!(
        (unknown_asset.status, unknown_asset.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_asset".to_owned())
    );
    let other_asset = app.wallet(&owner, &agent, "EUR", 0).await;
    let mismatch = app
        .transfer(&agent_key, &from, &other_asset, 1, "m-1")
        .await;
    assert_eq!(
        mismatch.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        mismatch.body
    );
    assert_eq!(
        app.get(&format!("/v1/wallets/{from}/balance"), &owner)
            .await
            .body["balance"]
            .as_i64(),
        Some(100),
        "nothing moved"
    );
    assert_eq!(
        app.get(&format!("/v1/wallets/{from}/transactions"), &owner)
            .await
            .body["items"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "only the deposit"
    );
    let no_auth = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/wallets/{from}"),
            None,
            None,
            None,
        )
        .await;
    assert_eq!(no_auth.status, StatusCode::UNAUTHORIZED);
    assert!(no_auth.headers.get("www-authenticate").is_some());
    app.stop().await;
}

#[tokio::test]
async fn a_principal_over_its_rate_is_told_when_to_retry() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(
        &db,
        Options {
            rate: Some((1.0, 5)),
            ..Options::default()
        },
    )
    .await;
    let (_, owner) = app.owner("o").await;
    let mut limited = None;
    for _ in 0..20 {
        let r = app.get("/v1/agents", &owner).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = limited.expect("the limit is reached within 20 requests");
    let retry: u64 = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=2).contains(&retry), "{retry}");
    app.stop().await;
}
