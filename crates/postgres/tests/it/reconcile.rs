//! Reconciliation finds what does not add up.

use sea_orm::{ConnectionTrait, TransactionTrait};
use waiaas_testkit::{Fixture, TestDb, services};

#[tokio::test]
async fn reconcile_reports_a_tampered_balance_and_an_unbalanced_transaction() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 100).await.id;
    let b = world.wallet("USD", 0).await.id;
    let t = world.spend(a, b, 30).await;
    let ok = waiaas_postgres::reconcile(&db.db).await.unwrap();
    assert!(ok.is_consistent(), "{ok}");
    let usd = ok.assets.iter().find(|x| x.asset == "USD").unwrap();
    assert_eq!(
        (
            usd.balances.as_str(),
            usd.deposits.as_str(),
            usd.payments.as_str()
        ),
        ("100", "100", "0")
    );

    db.db
        .execute_unprepared(&format!(
            "UPDATE wallets SET balance = balance + 1 WHERE id = '{a}'"
        ))
        .await
        .unwrap();
    waiaas_testkit::tamper(
        &db.db,
        &format!(
            "UPDATE ledger_entries SET amount = amount + 5 WHERE transaction_id = '{}' AND amount > 0",
            t.transaction.id
        ),
    )
    .await;
    let bad = waiaas_postgres::reconcile(&db.db).await.unwrap();
    assert!(!bad.is_consistent());
    assert_eq!(bad.wallet_mismatches.len(), 2, "{bad}");
    assert_eq!(
        bad.unbalanced_transactions,
        vec![(t.transaction.id.to_string(), "5".to_owned())]
    );
    assert!(bad.to_string().contains("reconcile: FAILED"));
}

#[tokio::test]
async fn the_platforms_account_and_a_destination_of_the_same_name_stay_apart() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 100).await.id;
    let mut req = waiaas_testkit::World::transfer_request(a, a, 30);
    req.to_wallet_id = None;
    req.destination = Some("deposits".to_owned());
    services
        .transfer(&world.agent(), req, &world.agent_ctx())
        .await
        .unwrap();
    let ok = waiaas_postgres::reconcile(&db.db).await.unwrap();
    assert!(ok.is_consistent(), "{ok}");
    let usd = ok.assets.iter().find(|x| x.asset == "USD").unwrap();
    assert_eq!(
        (usd.deposits.as_str(), usd.payments.as_str()),
        ("100", "30"),
        "the payment to `deposits` went out; it did not undo a deposit"
    );

    // Booking the payment on the platform's account (what the old namespace did) is caught.
    waiaas_testkit::tamper(
        &db.db,
        "UPDATE ledger_entries SET account = 'system:deposits' WHERE account = 'external:deposits'",
    )
    .await;
    let bad = waiaas_postgres::reconcile(&db.db).await.unwrap();
    assert!(!bad.is_consistent());
    assert_eq!(bad.account_mismatches.len(), 1, "{bad}");
    assert_eq!(bad.account_mismatches[0].2, "payment");
    // And an account outside the three namespaces cannot even be written, by the
    // superuser behind the append-only trigger's back either.
    let txn = db.db.begin().await.unwrap();
    txn.execute_unprepared("SET LOCAL session_replication_role = replica")
        .await
        .unwrap();
    let refused = txn
        .execute_unprepared(
            "UPDATE ledger_entries SET account = 'deposits' WHERE wallet_id IS NULL",
        )
        .await;
    let e = refused.expect_err("the namespace CHECK let a bare account in");
    assert!(e.to_string().contains("check constraint"), "{e}");
    txn.rollback().await.unwrap();
}
