//! Approval: a transfer above the threshold waits, moves nothing, and is posted on approval
//! only if funds and policy still allow it.

use waiaas_domain::model::TransactionStatus;
use waiaas_domain::{ApprovalError, Money, PolicyRules, Rule};
use waiaas_testkit::{Fixture, TestDb, services};

fn m(v: i64) -> Option<Money> {
    Some(Money::new(v).unwrap())
}

#[tokio::test]
async fn a_transfer_above_the_threshold_waits_and_is_posted_on_approval() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let from = world.wallet("USD", 1_000).await.id;
    let to = world.wallet("USD", 0).await.id;
    let rules = PolicyRules {
        approval_above: m(100),
        ..Default::default()
    };
    world.set_rules(from, rules).await;

    let out = world.spend(from, to, 150).await;
    assert_eq!(out.transaction.status, TransactionStatus::PendingApproval);
    assert_eq!(out.transaction.rule, Some(Rule::ApprovalAbove));
    assert!(out.balances.is_empty());
    assert_eq!(
        services
            .balance(&world.owner(), from)
            .await
            .unwrap()
            .balance
            .minor_units(),
        1_000,
        "no money moved"
    );
    let (_, unread) = services
        .notifications(&world.owner(), None, None)
        .await
        .unwrap();
    assert_eq!(unread.count, 1, "the owner is asked");

    let err = services
        .decide(&world.agent(), out.transaction.id, true, &world.agent_ctx())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::Forbidden),
        "agents do not approve"
    );

    let approved = services
        .decide(&world.owner(), out.transaction.id, true, &world.owner_ctx())
        .await
        .unwrap();
    assert_eq!(approved.transaction.status, TransactionStatus::Completed);
    assert_eq!(
        services
            .balance(&world.owner(), from)
            .await
            .unwrap()
            .balance
            .minor_units(),
        850
    );
    assert_eq!(
        services
            .balance(&world.owner(), to)
            .await
            .unwrap()
            .balance
            .minor_units(),
        150
    );
    // The owner's answer was lost and the approval is sent again: it replays, whatever
    // changed since (even a suspended agent), and moves nothing more.
    services
        .set_agent_status(
            world.owner_id,
            world.agent_id,
            waiaas_domain::AgentStatus::Suspended,
            &world.owner_ctx(),
        )
        .await
        .unwrap();
    let again = services
        .decide(&world.owner(), out.transaction.id, true, &world.owner_ctx())
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.transaction, approved.transaction);
    assert_eq!(
        services
            .balance(&world.owner(), from)
            .await
            .unwrap()
            .balance
            .minor_units(),
        850,
        "nothing moved twice"
    );
    // The other answer is a conflict: the transaction is no longer pending.
    let reject = services
        .decide(
            &world.owner(),
            out.transaction.id,
            false,
            &world.owner_ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        reject,
        ApprovalError::NotPending(TransactionStatus::Completed)
    ));
    assert!(
        waiaas_postgres::reconcile(&db.db)
            .await
            .unwrap()
            .is_consistent()
    );
}

#[tokio::test]
async fn an_approval_fails_when_the_funds_are_gone_and_is_denied_when_the_policy_changed() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let from = world.wallet("USD", 300).await.id;
    let to = world.wallet("USD", 0).await.id;
    let rules = PolicyRules {
        approval_above: m(100),
        ..Default::default()
    };
    world.set_rules(from, rules).await;

    let a = world.spend(from, to, 200).await;
    let b = world.spend(from, to, 250).await;
    let c = world.spend(from, to, 50).await;
    assert_eq!(c.transaction.status, TransactionStatus::Completed);

    // 250 left: approving the 200 works, then the 250 no longer has the funds.
    let first = services
        .decide(&world.owner(), a.transaction.id, true, &world.owner_ctx())
        .await
        .unwrap();
    assert_eq!(first.transaction.status, TransactionStatus::Completed);
    let second = services
        .decide(&world.owner(), b.transaction.id, true, &world.owner_ctx())
        .await
        .unwrap();
    assert_eq!(second.transaction.status, TransactionStatus::Failed);
    assert_eq!(
        services
            .balance(&world.owner(), from)
            .await
            .unwrap()
            .balance
            .minor_units(),
        50
    );

    // A held transfer meets a policy tightened after it was asked for.
    world.deposit(from, 1_000).await;
    let d = world.spend(from, to, 500).await;
    assert_eq!(d.transaction.status, TransactionStatus::PendingApproval);
    let tighter = PolicyRules {
        approval_above: m(100),
        max_per_transaction: m(400),
        ..Default::default()
    };
    world.set_rules(from, tighter).await;
    let third = services
        .decide(&world.owner(), d.transaction.id, true, &world.owner_ctx())
        .await
        .unwrap();
    assert_eq!(third.transaction.status, TransactionStatus::Denied);
    assert_eq!(third.transaction.rule, Some(Rule::MaxPerTransaction));
    assert_eq!(
        services
            .balance(&world.owner(), from)
            .await
            .unwrap()
            .balance
            .minor_units(),
        1_050
    );
    assert!(
        waiaas_postgres::reconcile(&db.db)
            .await
            .unwrap()
            .is_consistent()
    );
}

#[tokio::test]
async fn a_rejected_transfer_moves_nothing_and_another_owner_cannot_decide() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let stranger = Fixture::world(&services).await;
    let from = world.wallet("USD", 300).await.id;
    let to = world.wallet("USD", 0).await.id;
    let rules = PolicyRules {
        approval_above: m(10),
        ..Default::default()
    };
    world.set_rules(from, rules).await;
    let a = world.spend(from, to, 20).await;
    let err = services
        .decide(
            &stranger.owner(),
            a.transaction.id,
            true,
            &stranger.owner_ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::NotFound(_)));
    let rejected = services
        .decide(&world.owner(), a.transaction.id, false, &world.owner_ctx())
        .await
        .unwrap();
    assert_eq!(rejected.transaction.status, TransactionStatus::Rejected);
    assert_eq!(
        services
            .balance(&world.owner(), from)
            .await
            .unwrap()
            .balance
            .minor_units(),
        300
    );
}
