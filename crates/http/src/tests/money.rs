//! Moving money: amounts, the idempotency key, and the answers to each posting outcome.

use axum::http::StatusCode;
use serde_json::{Value, json};
use waiaas_domain::errors::PostingError;
use waiaas_domain::{Rule, TransactionStatus};

use super::*;

fn transfer_request(w: &World, amount: Value, key: Option<&str>) -> Request<Body> {
    let uri = format!("/v1/wallets/{}/transfers", w.wallet);
    let body = json!({"amount": amount, "to_wallet_id": w.wallet2});
    let mut req = request("POST", &uri, Some(AGENT_KEY), Some(body));
    if let Some(k) = key {
        req.headers_mut()
            .insert("idempotency-key", k.parse().unwrap());
    }
    req
}

/// Mocks whose posting port answers every spend with `answer`.
fn posting(
    w: &World,
    answer: impl Fn(&SpendCommand) -> Result<PostingOutcome, PostingError> + Send + 'static,
) -> Mocks {
    let mut m = Mocks::new(w);
    m.transactions.expect_post_spend().returning(answer);
    m
}

fn outcome(tx: Transaction, replayed: bool) -> PostingOutcome {
    PostingOutcome {
        transaction: tx,
        replayed,
        balances: vec![],
        notified: None,
    }
}

#[tokio::test]
async fn zero_negative_and_overflowing_amounts_are_400() {
    let w = World::new();
    for amount in [
        json!(0),
        json!(-5),
        json!(9_223_372_036_854_775_808_u64),
        json!(1.5),
    ] {
        let req = transfer_request(&w, amount.clone(), Some("k-1"));
        let (status, _, body) = send(Mocks::new(&w).app(), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{amount}");
        assert!(
            ["invalid_amount", "invalid_request"].contains(&code(&body)),
            "{amount}: {body}"
        );
    }
}

#[tokio::test]
async fn a_transfer_without_an_idempotency_key_is_a_400() {
    let w = World::new();
    let (status, _, body) = send(Mocks::new(&w).app(), transfer_request(&w, json!(10), None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "missing_idempotency_key");
}

#[tokio::test]
async fn a_completed_transfer_is_a_201_and_a_held_one_a_202() {
    let w = World::new();
    for (status, expected) in [
        (TransactionStatus::Completed, StatusCode::CREATED),
        (TransactionStatus::PendingApproval, StatusCode::ACCEPTED),
    ] {
        let (from, to) = (w.wallet, w.wallet2);
        let m = posting(&w, move |_| Ok(outcome(spend(from, to, 10, status), false)));
        let (got, _, body) = send(m.app(), transfer_request(&w, json!(10), Some("k-1"))).await;
        assert_eq!(got, expected);
        assert_eq!(body["status"], status.as_str());
        assert_eq!(body["amount"], 10);
        assert_eq!(body["from_wallet_id"], w.wallet.to_string());
    }
}

#[tokio::test]
async fn a_policy_denial_is_a_422_naming_the_rule_and_the_budget_left() {
    let w = World::new();
    let mut tx = spend(w.wallet, w.wallet2, 500, TransactionStatus::Denied);
    tx.rule = Some(Rule::DailyLimit);
    tx.reason = Some("the daily limit leaves 100".into());
    tx.budget.daily_remaining = Some(Money::new(100).unwrap());
    let id = tx.id;
    let m = posting(&w, move |_| Ok(outcome(tx.clone(), false)));
    let (status, _, body) = send(m.app(), transfer_request(&w, json!(500), Some("k-1"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "policy_denied");
    assert_eq!(body["error"]["rule"], "daily_limit");
    assert_eq!(body["error"]["budget"]["daily_remaining"], 100);
    assert_eq!(body["error"]["transaction_id"], id.to_string());
}

#[tokio::test]
async fn insufficient_funds_is_a_422() {
    let w = World::new();
    let tx = spend(w.wallet, w.wallet2, 500, TransactionStatus::Failed);
    let m = posting(&w, move |_| Ok(outcome(tx.clone(), false)));
    let (status, _, body) = send(m.app(), transfer_request(&w, json!(500), Some("k-1"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "insufficient_funds");
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_a_409() {
    let w = World::new();
    let m = posting(&w, |_| Err(PostingError::IdempotencyConflict));
    let (status, _, body) = send(m.app(), transfer_request(&w, json!(7), Some("k-1"))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "idempotency_conflict");
}

#[tokio::test]
async fn a_replay_gets_exactly_the_first_answer() {
    let w = World::new();
    let tx = spend(w.wallet, w.wallet2, 10, TransactionStatus::PendingApproval);
    let first_tx = tx.clone();
    let first = posting(&w, move |_| Ok(outcome(first_tx.clone(), false)));
    let replay = posting(&w, move |c| {
        assert_eq!(c.idempotency.as_ref().unwrap().key.as_str(), "k-1");
        Ok(outcome(tx.clone(), true))
    });
    let a = send(first.app(), transfer_request(&w, json!(10), Some("k-1"))).await;
    let b = send(replay.app(), transfer_request(&w, json!(10), Some("k-1"))).await;
    assert_eq!((a.0, &a.2), (b.0, &b.2));
    assert_eq!(a.0, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_suspended_agent_cannot_move_money() {
    let w = World::new();
    let m = posting(&w, |_| Err(PostingError::AgentNotActive));
    let (status, _, body) = send(m.app(), transfer_request(&w, json!(10), Some("k-1"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "agent_not_active");
}

#[tokio::test]
async fn an_owner_cannot_transfer_and_an_agent_cannot_deposit() {
    let w = World::new();
    let mut req = transfer_request(&w, json!(10), Some("k-1"));
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {OWNER_KEY}").parse().unwrap(),
    );
    let (status, _, _) = send(Mocks::new(&w).app(), req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let uri = format!("/v1/wallets/{}/deposits", w.wallet);
    let req = request("POST", &uri, Some(AGENT_KEY), Some(json!({"amount": 10})));
    let (status, _, body) = send(Mocks::new(&w).app(), req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&body), "forbidden");
}

#[tokio::test]
async fn a_deposit_is_a_201_carrying_the_request_id_to_the_audit_trail() {
    let w = World::new();
    let mut m = Mocks::new(&w);
    let wallet = w.wallet;
    m.transactions
        .expect_post_deposit()
        .withf(|c| c.audit.request_id.as_deref() == Some("req-7") && c.amount.minor_units() == 25)
        .returning(move |c| {
            let mut tx = spend(wallet, wallet, 25, TransactionStatus::Completed);
            tx.kind = waiaas_domain::TransactionKind::Deposit;
            tx.from_wallet_id = None;
            tx.id = c.transaction_id;
            Ok(outcome(tx, false))
        });
    let uri = format!("/v1/wallets/{}/deposits", w.wallet);
    let mut req = request("POST", &uri, Some(OWNER_KEY), Some(json!({"amount": 25})));
    req.headers_mut()
        .insert("x-request-id", "req-7".parse().unwrap());
    req.headers_mut()
        .insert("idempotency-key", "dep-7".parse().unwrap());
    let (status, _, body) = send(m.app(), req).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["kind"], "deposit");
    assert_eq!(body["from_wallet_id"], Value::Null);
}

#[tokio::test]
async fn a_replay_of_a_held_transfer_decided_since_is_still_a_202() {
    let w = World::new();
    let mut tx = spend(w.wallet, w.wallet2, 10, TransactionStatus::Completed);
    tx.updated_at = now() + chrono::Duration::minutes(5);
    tx.decision = Some(waiaas_domain::OwnerDecision::Approved);
    let m = posting(&w, move |_| Ok(outcome(tx.clone(), true)));
    let (status, _, body) = send(m.app(), transfer_request(&w, json!(10), Some("k-1"))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "completed");
}
