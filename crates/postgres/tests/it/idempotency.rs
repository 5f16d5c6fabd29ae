//! Idempotency keys: a retried request returns the first answer; a reused key with another
//! body is a conflict.

use waiaas_domain::PostingError;
use waiaas_domain::services::TransferRequest;
use waiaas_testkit::{Fixture, TestDb, World, services};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_key_twenty_times_at_once_makes_one_transaction_and_twenty_identical_answers() {
    the_same_key_twenty_times(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_key_twenty_times_at_once_in_batches_makes_one_transaction() {
    the_same_key_twenty_times(64).await;
}

async fn the_same_key_twenty_times(max_batch: usize) {
    let db = TestDb::with_pool(12).await;
    let services = services(&db.postgres_batched(4, max_batch));
    let world = Fixture::world(&services).await;
    let from = world.wallet("USD", 1_000).await.id;
    let to = world.wallet("USD", 0).await.id;
    let request = TransferRequest {
        idempotency_key: Some("pay-invoice-7".into()),
        ..World::transfer_request(from, to, 25)
    };

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (world, request) = (world.clone(), request.clone());
            tokio::spawn(async move {
                world
                    .services
                    .transfer(&world.agent(), request, &world.agent_ctx())
                    .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task").expect("transfer").transaction);
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "all answers are the first one"
    );
    let page = world
        .services
        .list_transactions(
            &world.owner(),
            from,
            &waiaas_domain::TxFilter::default(),
            Some(100),
            None,
        )
        .await
        .unwrap();
    let transfers: Vec<_> = page
        .items
        .iter()
        .filter(|t| t.from_wallet_id == Some(from))
        .collect();
    assert_eq!(transfers.len(), 1, "one transaction");
    assert_eq!(
        world
            .services
            .balance(&world.owner(), to)
            .await
            .unwrap()
            .balance
            .minor_units(),
        25
    );
    assert!(
        waiaas_postgres::reconcile(&db.db)
            .await
            .unwrap()
            .is_consistent()
    );
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_a_conflict_and_writes_nothing() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let from = world.wallet("USD", 1_000).await.id;
    let to = world.wallet("USD", 0).await.id;
    let first = TransferRequest {
        idempotency_key: Some("k-1".into()),
        ..World::transfer_request(from, to, 25)
    };
    world
        .services
        .transfer(&world.agent(), first.clone(), &world.agent_ctx())
        .await
        .unwrap();
    let replay = world
        .services
        .transfer(&world.agent(), first.clone(), &world.agent_ctx())
        .await
        .unwrap();
    assert!(replay.replayed);

    let other = TransferRequest {
        amount: 26,
        ..first
    };
    let err = world
        .services
        .transfer(&world.agent(), other, &world.agent_ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, PostingError::IdempotencyConflict), "{err:?}");
    assert_eq!(
        world
            .services
            .balance(&world.owner(), to)
            .await
            .unwrap()
            .balance
            .minor_units(),
        25
    );
    let report = waiaas_postgres::reconcile(&db.db).await.unwrap();
    assert_eq!(report.transactions, 2, "one deposit and one transfer");
}

#[tokio::test]
async fn a_denied_request_replays_as_the_same_denial() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let from = world.wallet("USD", 10).await.id;
    let to = world.wallet("USD", 0).await.id;
    let req = TransferRequest {
        idempotency_key: Some("k-2".into()),
        ..World::transfer_request(from, to, 50)
    };
    let first = world
        .services
        .transfer(&world.agent(), req.clone(), &world.agent_ctx())
        .await
        .unwrap();
    world.deposit(from, 100).await;
    let second = world
        .services
        .transfer(&world.agent(), req, &world.agent_ctx())
        .await
        .unwrap();
    assert_eq!(
        first.transaction, second.transaction,
        "the first answer stands even after a deposit"
    );
}
