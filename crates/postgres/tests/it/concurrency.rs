//! Many transfers at once: the ledger stays balanced and no money appears or vanishes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use waiaas_domain::model::TransactionStatus;
use waiaas_domain::services::TransferRequest;
use waiaas_domain::{PolicyRules, Rule};
use waiaas_testkit::{Fixture, TestDb, World, services};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_of_random_transfers_keep_every_invariant() {
    thirty_two_tasks(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_of_random_transfers_keep_every_invariant_in_batches() {
    thirty_two_tasks(64).await;
}

/// 32 tasks of 100 random transfers and payments each, posted in batches of up to
/// `max_batch`.
async fn thirty_two_tasks(max_batch: usize) {
    let db = TestDb::with_pool(12).await;
    thirty_two_tasks_on(&db, db.postgres_batched(4, max_batch)).await;
}

/// The 32 tasks, through `pg` (a pool on `db`'s database, perhaps through a pooler); the
/// ledger is checked on `db`'s own pool.
pub(crate) async fn thirty_two_tasks_on(db: &TestDb, pg: waiaas_postgres::Postgres) {
    let services = services(&pg);
    let world = Fixture::world(&services).await;
    let mut wallets = Vec::new();
    let mut deposited = 0_i64;
    for _ in 0..10 {
        wallets.push(world.wallet("USD", 1_000).await.id);
        deposited += 1_000;
    }
    let wallets = Arc::new(wallets);
    let paid_out = Arc::new(AtomicI64::new(0));
    let completed = Arc::new(AtomicI64::new(0));

    let mut tasks = Vec::new();
    for task in 0..32_u64 {
        let (world, wallets, paid_out, completed) = (
            world.clone(),
            wallets.clone(),
            paid_out.clone(),
            completed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(task);
            for _ in 0..100 {
                let from = wallets[rng.random_range(0..wallets.len())];
                let amount = rng.random_range(1..=120);
                let payment = rng.random_bool(0.1);
                let req = if payment {
                    TransferRequest {
                        to_wallet_id: None,
                        destination: Some("merchant-42".into()),
                        ..World::transfer_request(from, from, amount)
                    }
                } else {
                    let mut to = from;
                    while to == from {
                        to = wallets[rng.random_range(0..wallets.len())];
                    }
                    World::transfer_request(from, to, amount)
                };
                let out = world
                    .services
                    .transfer(&world.agent(), req, &world.agent_ctx())
                    .await
                    .expect("transfer");
                match out.transaction.status {
                    TransactionStatus::Completed => {
                        completed.fetch_add(1, Ordering::Relaxed);
                        if payment {
                            paid_out.fetch_add(amount, Ordering::Relaxed);
                        }
                    }
                    TransactionStatus::Failed => {}
                    other => panic!("unexpected status {other:?}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert!(
        completed.load(Ordering::Relaxed) > 1000,
        "most transfers should complete"
    );

    let report = waiaas_postgres::reconcile(&db.db).await.expect("reconcile");
    assert!(report.is_consistent(), "{report}");
    assert_eq!(
        report.transactions,
        10 + 3200,
        "every attempt is recorded once"
    );
    let mut total = 0_i64;
    for w in wallets.iter() {
        let b = world
            .services
            .balance(&world.owner(), *w)
            .await
            .expect("balance");
        total += b.balance.minor_units();
    }
    assert_eq!(total, deposited - paid_out.load(Ordering::Relaxed));
    let usd = report
        .assets
        .iter()
        .find(|a| a.asset == "USD")
        .expect("usd totals");
    assert_eq!(usd.balances, total.to_string());
    assert_eq!(usd.payments, paid_out.load(Ordering::Relaxed).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_the_daily_limit_lets_exactly_the_budget_through() {
    racing_the_daily_limit(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_the_daily_limit_in_batches_lets_exactly_the_budget_through() {
    racing_the_daily_limit(64).await;
}

/// 50 transfers of 10 at once against a daily limit of 200.
async fn racing_the_daily_limit(max_batch: usize) {
    let db = TestDb::with_pool(12).await;
    racing_the_daily_limit_on(db.postgres_batched(4, max_batch)).await;
}

/// The race, through `pg`.
pub(crate) async fn racing_the_daily_limit_on(pg: waiaas_postgres::Postgres) {
    let services = services(&pg);
    let world = Fixture::world(&services).await;
    let from = world.wallet("USD", 10_000).await.id;
    let to = world.wallet("USD", 0).await.id;
    let rules = PolicyRules {
        daily_limit: Some(waiaas_domain::Money::new(200).unwrap()),
        ..Default::default()
    };
    world
        .services
        .set_policy(&world.owner(), from, rules, &world.owner_ctx())
        .await
        .expect("policy");

    let attempts = (0..50).map(|_| {
        let world = world.clone();
        tokio::spawn(async move {
            world
                .services
                .transfer(
                    &world.agent(),
                    World::transfer_request(from, to, 10),
                    &world.agent_ctx(),
                )
                .await
        })
    });
    let mut completed = 0;
    let mut denied = 0;
    for a in attempts.collect::<Vec<_>>() {
        let out = a.await.expect("task").expect("transfer");
        match out.transaction.status {
            TransactionStatus::Completed => completed += 1,
            TransactionStatus::Denied => {
                assert_eq!(out.transaction.rule, Some(Rule::DailyLimit));
                assert_eq!(
                    out.transaction
                        .budget
                        .daily_remaining
                        .map(|m| m.minor_units()),
                    Some(0)
                );
                denied += 1;
            }
            other => panic!("unexpected status {other:?}"),
        }
    }
    assert_eq!((completed, denied), (20, 30));
    let balance = world.services.balance(&world.owner(), to).await.unwrap();
    assert_eq!(balance.balance.minor_units(), 200);
    let summary = world.services.summary(&world.owner(), from).await.unwrap();
    assert_eq!(
        (summary.today.spent.minor_units(), summary.today.count),
        (200, 20)
    );
    let (notes, unread) = world
        .services
        .notifications(&world.owner(), None, None)
        .await
        .unwrap();
    assert_eq!(unread.count, 30, "the owner is told of every denial");
    assert_eq!(notes.items.len(), 30);
}

/// A pool of two leaves writers one connection: a transfer waiting on a wallet another
/// transaction holds keeps it, and the next writer waits for it, counted as it waits
/// (`waiaas_db_pool_waiters{share="writers"}`) and no longer once it has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_waiting_for_the_writers_share_is_counted_while_it_waits() {
    let db = TestDb::with_pool(2).await;
    let pg = db.postgres();
    let services = services(&pg);
    let world = Fixture::world(&services).await;
    let (a, b, c) = (
        world.wallet("USD", 100).await.id,
        world.wallet("USD", 100).await.id,
        world.wallet("USD", 0).await.id,
    );
    assert_eq!(pg.writers_waiting(), 0);
    // Other work, on a connection outside the pool.
    let other = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    let blocker = crate::lock_wallet(&other, a).await;
    let transfer = |from, to| {
        let world = world.clone();
        tokio::spawn(async move {
            world
                .services
                .transfer(
                    &world.agent(),
                    World::transfer_request(from, to, 10),
                    &world.agent_ctx(),
                )
                .await
        })
    };
    // The first holds the writers' one connection, waiting for the locked wallet.
    let first = transfer(a, c);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while pg.writer_permits_available() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first never began"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let second = transfer(b, c);
    while pg.writers_waiting() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second writer is not counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(pg.writers_waiting(), 1);
    blocker.rollback().await.unwrap();
    // The first may have given up on the lock already (lock_timeout) on a slow machine.
    if let Ok(out) = first.await.unwrap() {
        assert_eq!(out.transaction.status, TransactionStatus::Completed);
    }
    let out = second.await.unwrap().expect("transfer");
    assert_eq!(out.transaction.status, TransactionStatus::Completed);
    assert_eq!(pg.writers_waiting(), 0, "no longer waiting");
}
