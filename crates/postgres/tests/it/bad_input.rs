//! Bad input is a typed domain error and writes nothing: no transaction, no ledger entry, no
//! audit row, no notification.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use waiaas_domain::services::{DepositRequest, TransferRequest};
use waiaas_domain::{AgentStatus, CreateWalletError, MoneyError, PostingError, WalletId};
use waiaas_testkit::{Fixture, TestDb, World, services};

async fn rows(db: &TestDb) -> Vec<i64> {
    let row = db
        .db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT (SELECT count(*) FROM transactions) AS t, (SELECT count(*) FROM ledger_entries) AS l, \
             (SELECT count(*) FROM audit_logs) AS a, (SELECT count(*) FROM notifications) AS n, \
             (SELECT count(*) FROM wallets) AS w, (SELECT count(*) FROM ledger_entries WHERE amount > 0) AS b",
        ))
        .await
        .unwrap()
        .unwrap();
    ["t", "l", "a", "n", "w", "b"]
        .iter()
        .map(|c| row.try_get("", c).unwrap())
        .collect()
}

#[tokio::test]
async fn every_kind_of_bad_input_is_a_typed_error_and_writes_nothing() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let other = Fixture::world(&services).await;
    let usd = world.wallet("USD", 1_000).await.id;
    let usd2 = world.wallet("USD", 0).await.id;
    let eur = world.wallet("EUR", 0).await.id;
    let foreign = other.wallet("USD", 500).await.id;
    let before = rows(&db).await;

    let transfer = |req: TransferRequest| {
        let world = world.clone();
        async move {
            world
                .services
                .transfer(&world.agent(), req, &world.agent_ctx())
                .await
                .unwrap_err()
        }
    };
    let e = transfer(World::transfer_request(usd, usd2, 0)).await;
    assert!(
        matches!(e, PostingError::InvalidAmount(MoneyError::Zero)),
        "{e:?}"
    );
    let e = transfer(World::transfer_request(usd, usd2, -5)).await;
    assert!(
        matches!(e, PostingError::InvalidAmount(MoneyError::Negative(-5))),
        "{e:?}"
    );
    let e = transfer(World::transfer_request(usd, usd, 5)).await;
    assert!(matches!(e, PostingError::SameWallet), "{e:?}");
    let e = transfer(World::transfer_request(usd, eur, 5)).await;
    assert!(matches!(e, PostingError::AssetMismatch { .. }), "{e:?}");
    let e = transfer(World::transfer_request(foreign, usd, 5)).await;
    assert!(
        matches!(e, PostingError::NotHolder(w) if w == foreign),
        "{e:?}"
    );
    let e = transfer(World::transfer_request(usd, WalletId::new(), 5)).await;
    assert!(matches!(e, PostingError::WalletNotFound(_)), "{e:?}");
    let e = transfer(TransferRequest {
        to_wallet_id: None,
        destination: Some("has space".into()),
        ..World::transfer_request(usd, usd, 5)
    })
    .await;
    assert!(matches!(e, PostingError::Invalid(_)), "{e:?}");
    let e = transfer(TransferRequest {
        idempotency_key: Some(String::new()),
        ..World::transfer_request(usd, usd2, 5)
    })
    .await;
    assert!(matches!(e, PostingError::Invalid(_)), "{e:?}");

    // Overflow: a deposit that would take a balance past i64::MAX.
    let e = world
        .services
        .deposit(
            &world.owner(),
            DepositRequest {
                wallet_id: usd,
                amount: i64::MAX,
                memo: None,
                metadata: None,
                idempotency_key: Some("overflow".into()),
            },
            &world.owner_ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, PostingError::BalanceOverflow), "{e:?}");
    // An unknown asset and a malformed one.
    let e = world
        .services
        .create_wallet(
            &world.owner(),
            world.agent_id,
            "DOGE",
            None,
            &world.owner_ctx(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, CreateWalletError::UnknownAsset(ref a) if a.as_str() == "DOGE"),
        "{e:?}"
    );
    let e = world
        .services
        .create_wallet(
            &world.owner(),
            world.agent_id,
            "us dollar",
            None,
            &world.owner_ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CreateWalletError::Invalid(_)), "{e:?}");
    // Another owner's agent.
    let e = world
        .services
        .create_wallet(
            &world.owner(),
            other.agent_id,
            "USD",
            None,
            &world.owner_ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CreateWalletError::AgentNotFound(_)), "{e:?}");

    assert_eq!(rows(&db).await, before, "nothing was written");
}

#[tokio::test]
async fn a_credit_that_would_overflow_the_receiver_is_refused() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let rich = world.wallet("USD", i64::MAX - 10).await.id;
    let payer = world.wallet("USD", 100).await.id;
    let before = rows(&db).await;
    let e = services
        .transfer(
            &world.agent(),
            World::transfer_request(payer, rich, 20),
            &world.agent_ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, PostingError::BalanceOverflow), "{e:?}");
    assert_eq!(rows(&db).await, before);
}

#[tokio::test]
async fn a_suspended_agent_cannot_move_money_but_can_again_once_reactivated() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let from = world.wallet("USD", 100).await.id;
    let to = world.wallet("USD", 0).await.id;
    services
        .set_agent_status(
            world.owner_id,
            world.agent_id,
            AgentStatus::Suspended,
            &world.owner_ctx(),
        )
        .await
        .unwrap();
    let before = rows(&db).await;
    let e = services
        .transfer(
            &world.agent(),
            World::transfer_request(from, to, 5),
            &world.agent_ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, PostingError::AgentNotActive), "{e:?}");
    assert_eq!(rows(&db).await, before);
    assert!(
        services.balance(&world.agent(), from).await.is_ok(),
        "a suspended agent may still read"
    );
    services
        .set_agent_status(
            world.owner_id,
            world.agent_id,
            AgentStatus::Active,
            &world.owner_ctx(),
        )
        .await
        .unwrap();
    world.spend(from, to, 5).await;
}
