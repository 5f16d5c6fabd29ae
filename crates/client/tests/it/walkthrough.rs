//! An owner sets up an agent that pays; what the policy refuses and what waits for the
//! owner's approval, as the client sees them.

use waiaas_client::api::{PolicyBody, TxListParams};
use waiaas_client::{ErrorCode, StatusCode};
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

use crate::{World, about, next_event, pay};

#[tokio::test]
async fn an_owner_registers_an_agent_and_a_wallet_deposits_and_the_agents_transfer_leaves_matching_balances()
 {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let w = World::new(&app, 10_000).await;

    let tx = w
        .agent
        .transfer(w.wallet.id, &pay(w.payee.id, 2_500))
        .await
        .unwrap();
    assert_eq!(
        (tx.kind.as_str(), tx.status.as_str()),
        ("transfer", "completed")
    );
    assert_eq!(tx.amount, 2_500);

    let paying = w.owner.balance(w.wallet.id).await.unwrap();
    assert_eq!(
        (paying.balance, paying.held, paying.available),
        (7_500, 0, 7_500)
    );
    assert_eq!(w.agent.balance(w.wallet.id).await.unwrap().balance, 7_500);
    assert_eq!(w.owner.balance(w.payee.id).await.unwrap().balance, 2_500);
    let summary = w.owner.summary(w.wallet.id).await.unwrap();
    assert_eq!((summary.today.spent, summary.today.count), (2_500, 1));

    // The deposit and the transfer, newest first; the same transaction read one by one.
    let page = w
        .owner
        .transactions(w.wallet.id, &TxListParams::default(), &[])
        .await
        .unwrap();
    let kinds: Vec<&str> = page.items.iter().map(|t| t.kind.as_str()).collect();
    assert_eq!(kinds, ["transfer", "deposit"]);
    assert_eq!(w.owner.get_transaction(tx.id).await.unwrap(), page.items[0]);

    let agents = w.owner.list_agents().await.unwrap();
    assert_eq!(
        agents.iter().map(|a| a.id).collect::<Vec<_>>(),
        [w.agent_id]
    );
    assert_eq!(
        w.owner.list_wallets(Some(w.agent_id)).await.unwrap().len(),
        2
    );

    // A suspended agent cannot pay; resumed, it can.
    w.owner.suspend_agent(w.agent_id).await.unwrap();
    let refused = w
        .agent
        .transfer(w.wallet.id, &pay(w.payee.id, 100))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some(&ErrorCode::AgentNotActive),
        "{refused}"
    );
    assert_eq!(
        w.owner.resume_agent(w.agent_id).await.unwrap().status,
        "active"
    );
    w.agent
        .transfer(w.wallet.id, &pay(w.payee.id, 100))
        .await
        .unwrap();
    assert_eq!(w.owner.balance(w.wallet.id).await.unwrap().balance, 7_400);
    app.stop().await;
}

#[tokio::test]
async fn a_transfer_the_policy_denies_is_a_policy_denied_error_with_its_rule_and_transaction() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let w = World::new(&app, 10_000).await;
    let policy = PolicyBody {
        max_per_transaction: Some(1_000),
        ..PolicyBody::default()
    };
    let set = w.owner.set_policy(w.wallet.id, &policy).await.unwrap();
    assert_eq!(set.max_per_transaction, Some(1_000));
    assert_eq!(w.agent.policy(w.wallet.id).await.unwrap(), set);

    let error = w
        .agent
        .transfer(w.wallet.id, &pay(w.payee.id, 1_500))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(error.code(), Some(&ErrorCode::PolicyDenied), "{error}");
    assert_eq!(error.detail("rule").as_deref(), Some("max_per_transaction"));
    assert_eq!(error.detail("level").as_deref(), Some("wallet"));
    // The refused transfer is recorded, and nothing moved.
    let id = error.detail("transaction_id").unwrap().parse().unwrap();
    let denied = w.owner.get_transaction(id).await.unwrap();
    assert_eq!((denied.status.as_str(), denied.amount), ("denied", 1_500));
    assert_eq!(w.owner.balance(w.wallet.id).await.unwrap().balance, 10_000);

    // Owners may not move money out of a wallet: a typed 403.
    let error = w
        .owner
        .transfer(w.wallet.id, &pay(w.payee.id, 10))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&ErrorCode::Forbidden), "{error}");
    app.stop().await;
}

#[tokio::test]
async fn a_transfer_waiting_for_approval_is_approved_by_the_owner_and_the_stream_shows_both_steps()
{
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let w = World::new(&app, 10_000).await;
    let policy = PolicyBody {
        approval_above: Some(1_000),
        ..PolicyBody::default()
    };
    w.owner.set_policy(w.wallet.id, &policy).await.unwrap();
    // From the wallet's first event: nothing can be missed, whenever the stream connects.
    let mut events = Box::pin(w.owner.wallet_events(w.wallet.id, Some(0)));

    let tx = w
        .agent
        .transfer(w.wallet.id, &pay(w.payee.id, 2_000))
        .await
        .unwrap();
    assert_eq!(tx.status, "pending_approval");
    let pending = next_event(&mut events, |e| {
        about(e, "transaction.pending_approval", tx.id)
    })
    .await;
    assert_eq!(
        pending.transaction.as_ref().unwrap().status,
        "pending_approval"
    );
    assert_eq!(w.owner.balance(w.wallet.id).await.unwrap().balance, 10_000);
    // The owner's home lists it first, typed as the server renders it.
    let home = w.owner.home().await.unwrap();
    assert_eq!(
        (home.pending_total, home.pending.first().map(|t| t.id)),
        (1, Some(tx.id))
    );
    assert_eq!(home.pending[0].rule.as_deref(), Some("approval_above"));

    let approved = w.owner.approve(tx.id).await.unwrap();
    assert_eq!(
        (approved.status.as_str(), approved.decision.as_deref()),
        ("completed", Some("approved"))
    );
    let completed = next_event(&mut events, |e| about(e, "transaction.completed", tx.id)).await;
    assert!(completed.id > pending.id);
    assert_eq!(completed.wallet_id, w.wallet.id);
    assert_eq!(w.owner.balance(w.wallet.id).await.unwrap().balance, 8_000);
    let home = w.owner.home().await.unwrap();
    assert_eq!(home.pending_total, 0);
    let wallet = home.agents[0]
        .wallets
        .iter()
        .find(|x| x.wallet.id == w.wallet.id)
        .unwrap();
    assert_eq!((wallet.wallet.balance, wallet.today.spent), (8_000, 2_000));
    // Approving again answers the same (safe to retry); rejecting it now is a 409.
    assert_eq!(w.owner.approve(tx.id).await.unwrap(), approved);
    let error = w.owner.reject(tx.id).await.unwrap_err();
    assert_eq!(error.code(), Some(&ErrorCode::NotPending), "{error}");
    app.stop().await;
}
