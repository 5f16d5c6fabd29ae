//! Idempotency keys: the same key replays the first answer, and the key the client makes up
//! for a call is the one it retries with after a `503`.

use waiaas_client::api::{TransferBody, TxListParams};
use waiaas_client::{Client, ErrorCode, RetryPolicy, StatusCode};
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

use crate::{World, pay};

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_transaction_and_moves_money_once() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let w = World::new(&app, 1_000).await;
    let body = pay(w.payee.id, 300);

    let first = w
        .agent
        .transfer_with_key(w.wallet.id, &body, "order-17")
        .await
        .unwrap();
    let again = w
        .agent
        .transfer_with_key(w.wallet.id, &body, "order-17")
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(w.owner.balance(w.wallet.id).await.unwrap().balance, 700);
    // The same key with another body is refused; a call without a key of its own gets a new
    // one, so it is a new transfer.
    let other = w
        .agent
        .transfer_with_key(w.wallet.id, &pay(w.payee.id, 301), "order-17")
        .await
        .unwrap_err();
    assert_eq!(
        other.code(),
        Some(&ErrorCode::IdempotencyConflict),
        "{other}"
    );
    let fresh = w.agent.transfer(w.wallet.id, &body).await.unwrap();
    assert_ne!(fresh.id, first.id);
    assert_eq!(w.owner.balance(w.wallet.id).await.unwrap().balance, 400);
    app.stop().await;
}

#[tokio::test]
async fn a_transfer_whose_commit_is_cut_is_retried_after_the_503_with_the_key_the_client_made_up() {
    let db = TestDb::new().await;
    // PostgreSQL behind a proxy that can break the connection right after a COMMIT.
    let (proxy, url) = waiaas_tests::proxied_database(&db).await;
    let options = Options {
        redis: false,
        ..Options::default()
    };
    let app = TestApp::spawn_with(TestApp::settings_for(&url, &options)).await;
    let w = World::new(&app, 1_000).await;

    // Without retries the fault is the caller's to see: a typed 503 that says to retry with
    // the same key, which then answers the transfer that was committed.
    let once = Client::builder(&app.base, &w.agent_key)
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    let unknown = TransferBody {
        memo: Some(format!("cut-{}", uuid::Uuid::new_v4())),
        ..pay(w.payee.id, 100)
    };
    proxy.cut_after_both(unknown.memo.as_deref().unwrap().as_bytes(), b"COMMIT");
    let error = once
        .transfer_with_key(w.wallet.id, &unknown, "unknown-1")
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(error.code(), Some(&ErrorCode::OutcomeUnknown), "{error}");
    assert_eq!(error.detail("retry_after").as_deref(), Some("1"));
    let replayed = once
        .transfer_with_key(w.wallet.id, &unknown, "unknown-1")
        .await
        .unwrap();
    assert_eq!(replayed.status, "completed");
    assert_eq!(w.owner.balance(w.wallet.id).await.unwrap().balance, 900);

    // The COMMIT of the connection that carried this transfer (found by its memo) reaches
    // PostgreSQL and the connection breaks: the service answers the first attempt `503
    // outcome_unknown` with `Retry-After: 1`. The client waits and sends the same request
    // again; only with the same key does the service replay the committed transfer instead
    // of posting a second one.
    let memo = format!("cut-{}", uuid::Uuid::new_v4());
    proxy.cut_after_both(memo.as_bytes(), b"COMMIT");
    let transfer = TransferBody {
        memo: Some(memo.clone()),
        ..pay(w.payee.id, 250)
    };
    let tx = w.agent.transfer(w.wallet.id, &transfer).await.unwrap();
    assert_eq!(proxy.cuts(), 2, "the first attempt's COMMIT was cut");
    assert_eq!(tx.status, "completed");
    assert_eq!(tx.memo.as_deref(), Some(memo.as_str()));

    // Money moved once: one transfer, one debit.
    let transfers = TxListParams {
        kind: Some("transfer".to_owned()),
        ..TxListParams::default()
    };
    let page = w
        .owner
        .transactions(w.wallet.id, &transfers, &[])
        .await
        .unwrap();
    let ids: Vec<_> = page.items.iter().map(|t| t.id).collect();
    assert_eq!(ids, [tx.id, replayed.id]);
    assert_eq!(w.owner.balance(w.wallet.id).await.unwrap().balance, 650);
    assert_eq!(w.owner.balance(w.payee.id).await.unwrap().balance, 350);
    app.stop().await;
}
