//! Batched postings: one worker, its first posting held up by a locked wallet while the
//! rest (transfers, payments, holds, deposits) queue, then posted as one batch that decides
//! each on what the ones before it left.

use std::time::Duration;

use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
use waiaas_domain::model::TransactionStatus;
use waiaas_domain::services::{HoldRequest, TransferRequest};
use waiaas_domain::{Money, PolicyRules, PostingError, Rule};
use waiaas_testkit::{Fixture, TestDb, World, services};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_batch_decides_each_posting_on_what_the_ones_before_it_left() {
    let db = TestDb::with_pool(12).await;
    let services = services(&db.postgres_batched(1, 64));
    let world = Fixture::world(&services).await;
    let blocked = world.wallet("USD", 50).await.id;
    let poor = world.wallet("USD", 100).await.id;
    let limited = world.wallet("USD", 1_000).await.id;
    let keyed = world.wallet("USD", 1_000).await.id;
    let holding = world.wallet("USD", 50).await.id;
    let to = world.wallet("USD", 0).await.id;
    let rules = PolicyRules {
        daily_limit: Some(Money::new(70).unwrap()),
        ..Default::default()
    };
    world
        .services
        .set_policy(&world.owner(), limited, rules, &world.owner_ctx())
        .await
        .expect("policy");

    // The worker's first posting waits for a wallet another transaction holds.
    let lock = db.db.begin().await.unwrap();
    lock.execute_unprepared(&format!(
        "SELECT 1 FROM wallets WHERE id = '{blocked}' FOR UPDATE"
    ))
    .await
    .unwrap();
    let before = waiaas_postgres::batch_stats();
    let send = |req: TransferRequest| {
        let world = world.clone();
        tokio::spawn(async move {
            world
                .services
                .transfer(&world.agent(), req, &world.agent_ctx())
                .await
        })
    };
    let first = send(World::transfer_request(blocked, to, 10));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Queued behind it: 15 of 10 from a wallet of 100, 10 of 10 under a daily limit of 70,
    // one key sent twice with the same body and one with the same key and another body.
    let poor_tasks: Vec<_> = (0..15)
        .map(|_| send(World::transfer_request(poor, to, 10)))
        .collect();
    let limited_tasks: Vec<_> = (0..10)
        .map(|_| send(World::transfer_request(limited, to, 10)))
        .collect();
    let twice = TransferRequest {
        idempotency_key: Some("twice".into()),
        ..World::transfer_request(keyed, to, 5)
    };
    let other_body = TransferRequest {
        idempotency_key: Some("other-body".into()),
        ..World::transfer_request(keyed, to, 7)
    };
    let keyed_tasks = vec![
        send(twice.clone()),
        send(twice),
        send(other_body.clone()),
        send(TransferRequest {
            amount: 8,
            ..other_body
        }),
    ];
    // Six holds of 10 on a wallet of 50, and two deposits into the receiving wallet.
    let hold_tasks: Vec<_> = (0..6)
        .map(|_| {
            let world = world.clone();
            tokio::spawn(async move {
                world
                    .services
                    .create_hold(
                        &world.agent(),
                        HoldRequest {
                            spend: World::transfer_request(holding, to, 10),
                            expires_in_s: None,
                        },
                        &world.agent_ctx(),
                    )
                    .await
            })
        })
        .collect();
    let deposit_tasks: Vec<_> = (0..2)
        .map(|_| {
            let world = world.clone();
            tokio::spawn(async move { world.deposit(to, 1).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    lock.rollback().await.unwrap();

    let first = first.await.unwrap().expect("the blocked transfer");
    assert_eq!(first.transaction.status, TransactionStatus::Completed);
    let mut after_poor = Vec::new();
    let mut failed = 0;
    for t in poor_tasks {
        let out = t.await.unwrap().expect("transfer");
        match out.transaction.status {
            TransactionStatus::Completed => {
                assert_eq!(out.balances[0].wallet_id, poor);
                after_poor.push(out.balances[0].balance.minor_units());
            }
            TransactionStatus::Failed => failed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    after_poor.sort_unstable();
    assert_eq!(
        after_poor,
        (0..10).map(|i| i * 10).collect::<Vec<_>>(),
        "each completed posting saw the balance the one before it left"
    );
    assert_eq!(failed, 5);
    let (mut completed, mut denied) = (0, 0);
    for t in limited_tasks {
        let out = t.await.unwrap().expect("transfer");
        match out.transaction.status {
            TransactionStatus::Completed => completed += 1,
            TransactionStatus::Denied => {
                assert_eq!(out.transaction.rule, Some(Rule::DailyLimit));
                assert!(out.notified.is_some(), "a denial notifies the owner");
                denied += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        (completed, denied),
        (7, 3),
        "the spend of each counts for the next"
    );
    let mut keyed_answers = Vec::new();
    for t in keyed_tasks {
        keyed_answers.push(t.await.unwrap());
    }
    let (a, b) = (
        keyed_answers[0].as_ref().unwrap(),
        keyed_answers[1].as_ref().unwrap(),
    );
    assert_eq!(
        a.transaction, b.transaction,
        "a repeated key gets the first answer"
    );
    assert!(
        a.replayed != b.replayed,
        "exactly one of them is the replay"
    );
    let conflicts = keyed_answers[2..]
        .iter()
        .filter(|r| matches!(r, Err(PostingError::IdempotencyConflict)))
        .count();
    assert_eq!(conflicts, 1, "{:?}", &keyed_answers[2..]);

    let mut held = Vec::new();
    for t in hold_tasks {
        let out = t.await.unwrap().expect("hold");
        match out.transaction.status {
            TransactionStatus::Held => {
                assert!(out.notified.is_some(), "a hold placed notifies the owner");
                held.push(out.balances[0].held.minor_units());
            }
            TransactionStatus::Failed => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    held.sort_unstable();
    assert_eq!(
        held,
        [10, 20, 30, 40, 50],
        "each hold saw what the ones before held"
    );
    for t in deposit_tasks {
        let out = t.await.unwrap();
        assert_eq!(out.transaction.status, TransactionStatus::Completed);
    }

    let stats = waiaas_postgres::batch_stats();
    let (batches, postings) = (
        stats.batches - before.batches,
        stats.postings - before.postings,
    );
    assert_eq!(postings, 38);
    assert_eq!(
        stats.split, before.split,
        "no batch was posted one by one instead"
    );
    assert!(
        batches <= 4,
        "{postings} postings came in {batches} batches: they were not batched"
    );

    let balance = |w| {
        let services = world.services.clone();
        let owner = world.owner();
        async move {
            services
                .balance(&owner, w)
                .await
                .unwrap()
                .balance
                .minor_units()
        }
    };
    assert_eq!(balance(poor).await, 0);
    assert_eq!(balance(limited).await, 930);
    let moved_keyed = 1_000 - balance(keyed).await;
    assert!(moved_keyed == 12 || moved_keyed == 13, "{moved_keyed}");
    assert_eq!(balance(to).await, 10 + 100 + 70 + moved_keyed + 2);
    let holding_balance = world
        .services
        .balance(&world.owner(), holding)
        .await
        .unwrap();
    assert_eq!(
        (
            holding_balance.balance.minor_units(),
            holding_balance.held.minor_units()
        ),
        (50, 50)
    );
    let summary = world
        .services
        .summary(&world.owner(), limited)
        .await
        .unwrap();
    assert_eq!(
        (summary.today.spent.minor_units(), summary.today.count),
        (70, 7)
    );
    let report = waiaas_postgres::reconcile(&db.db).await.unwrap();
    assert!(report.is_consistent(), "{report}");
    assert_eq!(
        report.transactions,
        5 + 1 + 15 + 10 + 2 + 6 + 2,
        "every posting recorded once"
    );
}
