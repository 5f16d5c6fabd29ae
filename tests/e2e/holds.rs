//! Holds over HTTP: place, read, list, capture, void and expire, with every bad request a
//! 4xx with a reason, and balances that show what is held.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, Reply, TestApp};

async fn hold(app: &TestApp, key: &str, wallet: &str, body: Value, idem: Option<&str>) -> Reply {
    app.call(
        Method::POST,
        &format!("/v1/wallets/{wallet}/holds"),
        Some(key),
        Some(body),
        idem,
    )
    .await
}

async fn capture(app: &TestApp, key: &str, hold: &str, body: Option<Value>, idem: &str) -> Reply {
    app.call(
        Method::POST,
        &format!("/v1/holds/{hold}/capture"),
        Some(key),
        body,
        Some(idem),
    )
    .await
}

async fn void(app: &TestApp, key: &str, hold: &str) -> Reply {
    app.call(
        Method::POST,
        &format!("/v1/holds/{hold}/void"),
        Some(key),
        None,
        None,
    )
    .await
}

async fn balance(app: &TestApp, key: &str, wallet: &str) -> (i64, i64, i64) {
    let r = app.get(&format!("/v1/wallets/{wallet}/balance"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let n = |f: &str| {
        r.body[f]
            .as_i64()
            .unwrap_or_else(|| panic!("{f}: {:?}", r.body))
    };
    (n("balance"), n("held"), n("available"))
}

#[tokio::test]
async fn an_agent_holds_captures_and_voids_and_every_mistake_is_a_4xx() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, agent_key) = app.agent(&owner, "rider").await;
    let a = app.wallet(&owner, &agent, "USD", 1_000).await;
    let b = app.wallet(&owner, &agent, "USD", 0).await;
    let ride = json!({ "amount": 300, "destination": "ride-co", "memo": "ride", "metadata": { "ride": "R-1" } });

    let r = hold(&app, &agent_key, &a, ride.clone(), None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "missing_idempotency_key")
    );
    let placed = hold(&app, &agent_key, &a, ride.clone(), Some("h-1")).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    assert_eq!(placed.str("status"), "held");
    assert_eq!(placed.body["captured"], 0);
    assert_eq!(placed.str("wallet_id"), a);
    let expires: chrono::DateTime<chrono::Utc> = placed.str("expires_at").parse().unwrap();
    let left = expires - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(59) && left <= chrono::Duration::minutes(60),
        "default lifetime: {left}"
    );
    let id = placed.str("id");
    let again = hold(&app, &agent_key, &a, ride.clone(), Some("h-1")).await;
    assert_eq!(
        (again.status, again.str("id")),
        (StatusCode::CREATED, id.clone())
    );
    assert_eq!(balance(&app, &agent_key, &a).await, (1_000, 300, 700));

    // Read by the agent and the owner, listed by status; no one else sees it.
    for key in [&agent_key, &owner] {
        let r = app.get(&format!("/v1/holds/{id}"), key).await;
        assert_eq!((r.status, r.str("status")), (StatusCode::OK, "held".into()));
    }
    let (_, stranger) = app.owner("Other").await;
    let r = app.get(&format!("/v1/holds/{id}"), &stranger).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .get(&format!("/v1/wallets/{a}/holds?status=held"), &owner)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = app
        .get(&format!("/v1/wallets/{a}/holds?status=voided"), &owner)
        .await;
    assert!(r.body["items"].as_array().unwrap().is_empty());
    for bad in ["status=bogus", "cursor=nope", "limit=x", "colour=red"] {
        let r = app
            .get(&format!("/v1/wallets/{a}/holds?{bad}"), &owner)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
    }
    // The transaction it is, found with the other transactions.
    let r = app.get("/v1/transactions?kind=hold", &owner).await;
    assert_eq!(r.body["items"][0]["id"], id.as_str());
    assert_eq!(r.body["items"][0]["metadata"]["ride"], "R-1");

    // Bad captures and holds.
    let r = capture(&app, &agent_key, &id, Some(json!({ "amount": 301 })), "c-0").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "capture_exceeds_hold")
    );
    assert_eq!(
        (
            r.body["error"]["held"].as_i64(),
            r.body["error"]["asked"].as_i64()
        ),
        (Some(300), Some(301))
    );
    let r = capture(&app, &agent_key, &id, Some(json!({ "amount": 0 })), "c-0").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = capture(&app, &agent_key, &id, Some(json!({ "amount": 1.5 })), "c-0").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    // A body is an object or nothing: serde alone would read `[]` as an empty struct.
    let r = capture(&app, &agent_key, &id, Some(json!([])), "c-0").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = app
        .post(&format!("/v1/agents/{agent}/keys"), &owner, json!([]))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = capture(&app, &owner, &id, None, "c-0").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app
        .call(
            Method::POST,
            &format!("/v1/holds/{id}/capture"),
            Some(&agent_key),
            None,
            None,
        )
        .await;
    assert_eq!(r.code(), "missing_idempotency_key");
    for (body, code) in [
        (
            json!({ "amount": 5, "destination": "x", "expires_in_s": 0 }),
            "invalid_expiry",
        ),
        (
            json!({ "amount": 5, "destination": "x", "expires_in_s": 604_801 }),
            "invalid_expiry",
        ),
        (
            json!({ "amount": 5, "destination": "x", "mandate_id": "m" }),
            "invalid_request",
        ),
        (json!({ "amount": 5 }), "invalid_target"),
    ] {
        let r = hold(&app, &agent_key, &a, body.clone(), Some("h-bad")).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, code.to_owned()),
            "{body}"
        );
    }
    let r = hold(&app, &owner, &a, ride.clone(), Some("h-owner")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A capture of part of it: a completed payment; the rest is released.
    let c = capture(&app, &agent_key, &id, Some(json!({ "amount": 120 })), "c-1").await;
    assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    assert_eq!(
        (c.str("kind"), c.str("status"), c.body["amount"].as_i64()),
        ("payment".into(), "completed".into(), Some(120))
    );
    assert_eq!(c.str("hold_id"), id);
    assert_eq!(c.str("destination"), "ride-co");
    let replay = capture(&app, &agent_key, &id, Some(json!({ "amount": 120 })), "c-1").await;
    assert_eq!(
        (replay.status, replay.str("id")),
        (StatusCode::CREATED, c.str("id"))
    );
    let r = capture(&app, &agent_key, &id, None, "c-2").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "hold_not_open")
    );
    assert_eq!(r.body["error"]["status"], "captured");
    let r = void(&app, &agent_key, &id).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "hold_not_open")
    );
    assert_eq!(balance(&app, &agent_key, &a).await, (880, 0, 880));
    let r = app.get(&format!("/v1/holds/{id}"), &owner).await;
    assert_eq!(
        (r.str("status"), r.body["captured"].as_i64()),
        ("captured".into(), Some(120))
    );

    // A hold to a wallet, voided by the owner: everything released; voiding again is the
    // same answer.
    let h = hold(
        &app,
        &agent_key,
        &a,
        json!({ "amount": 100, "to_wallet_id": b }),
        Some("h-2"),
    )
    .await;
    assert_eq!(h.status, StatusCode::CREATED, "{:?}", h.body);
    assert_eq!(balance(&app, &agent_key, &a).await, (880, 100, 780));
    let v = void(&app, &owner, &h.str("id")).await;
    assert_eq!(
        (v.status, v.str("status")),
        (StatusCode::OK, "voided".into())
    );
    let v = void(&app, &agent_key, &h.str("id")).await;
    assert_eq!(
        (v.status, v.str("status")),
        (StatusCode::OK, "voided".into())
    );
    assert_eq!(balance(&app, &agent_key, &a).await, (880, 0, 880));
    let r = void(&app, &stranger, &h.str("id")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Above the approval threshold: 202, and the owner's approval places it.
    let r = app
        .call(
            Method::PUT,
            &format!("/v1/wallets/{a}/policy"),
            Some(&owner),
            Some(json!({ "approval_above": 50 })),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let p = hold(
        &app,
        &agent_key,
        &a,
        json!({ "amount": 60, "to_wallet_id": b }),
        Some("h-3"),
    )
    .await;
    assert_eq!(
        (p.status, p.str("status")),
        (StatusCode::ACCEPTED, "pending_approval".into())
    );
    assert_eq!(balance(&app, &agent_key, &a).await, (880, 0, 880));
    let ok = app
        .call(
            Method::POST,
            &format!("/v1/transactions/{}/approve", p.str("id")),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(
        (ok.status, ok.str("status")),
        (StatusCode::OK, "held".into()),
        "{:?}",
        ok.body
    );
    assert_eq!(balance(&app, &agent_key, &a).await, (880, 60, 820));
    // The approval is audited as a decision, the placement as a hold.
    let trail = app
        .get(
            &format!("/v1/audit-logs?resource_id={}", p.str("id")),
            &owner,
        )
        .await;
    let actions: Vec<&str> = trail.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{:?}", trail.body))
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in ["transaction.approve", "hold.place"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let c = capture(&app, &agent_key, &p.str("id"), None, "c-3").await;
    assert_eq!(
        (c.status, c.str("kind")),
        (StatusCode::CREATED, "transfer".into())
    );
    assert_eq!(balance(&app, &agent_key, &b).await, (60, 0, 60));

    // The owner was told of each step.
    let n = app.get("/v1/notifications", &owner).await;
    let kinds: Vec<&str> = n.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "hold_placed",
        "hold_captured",
        "hold_voided",
        "approval_requested",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let report = waiaas_postgres::reconcile(&db.db).await.unwrap();
    assert!(report.is_consistent(), "{report}");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_hold_is_released_by_the_sweeper_and_cannot_be_captured() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, agent_key) = app.agent(&owner, "rider").await;
    let a = app.wallet(&owner, &agent, "USD", 1_000).await;
    let h = hold(
        &app,
        &agent_key,
        &a,
        json!({ "amount": 500, "destination": "ride-co", "expires_in_s": 1 }),
        Some("h-1"),
    )
    .await;
    assert_eq!(h.status, StatusCode::CREATED, "{:?}", h.body);
    let id = h.str("id");
    assert_eq!(balance(&app, &agent_key, &a).await, (1_000, 500, 500));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let r = app.get(&format!("/v1/holds/{id}"), &agent_key).await;
    assert_eq!(r.str("status"), "expired", "read as expired, swept or not");
    let r = capture(&app, &agent_key, &id, None, "c-1").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "hold_expired")
    );
    // Nobody spends from the wallet: the instance's sweeper releases the hold on its own,
    // and the cached balance follows.
    let mut released = false;
    for _ in 0..50 {
        if balance(&app, &agent_key, &a).await == (1_000, 0, 1_000) {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        released,
        "the sweeper released the hold: {:?}",
        balance(&app, &agent_key, &a).await
    );
    let r = app
        .get(&format!("/v1/wallets/{a}/holds?status=expired"), &owner)
        .await;
    assert_eq!(r.body["items"][0]["id"], id.as_str());
    let v = void(&app, &owner, &id).await;
    assert_eq!(
        (v.status, v.str("status")),
        (StatusCode::OK, "expired".into())
    );
    let report = waiaas_postgres::reconcile(&db.db).await.unwrap();
    assert!(report.is_consistent(), "{report}");
    app.stop().await;
}
