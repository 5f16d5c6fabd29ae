//! Behind PgBouncer in transaction mode (`database.pooler = "pgbouncer-transaction"`): a real
//! `pgbouncer`, started by the test, with two server connections that a pool of twelve
//! shares, so that consecutive round trips of one client connection land on different
//! server connections whenever no transaction holds one.

use std::time::Duration;

use waiaas_domain::ports::LockManager as _;
use waiaas_postgres::{AdvisoryLocks, PgSettings, Pooler, Postgres};
use waiaas_testkit::{Fixture, PgBouncer, TestDb, World, services};

async fn bouncer(db: &TestDb) -> PgBouncer {
    PgBouncer::start(&db.url, 2).await.expect("pgbouncer")
}

fn settings(bouncer: &PgBouncer, db: &TestDb) -> PgSettings {
    PgSettings {
        url: bouncer.url(&db.url),
        pooler: Pooler::PgbouncerTransaction,
        lock_timeout_ms: 300,
        ..db.settings(12)
    }
}

/// The service's pool on `db`'s database through `bouncer` (its log in the panic when not).
async fn pool(bouncer: &PgBouncer, db: &TestDb) -> sea_orm::DatabaseConnection {
    waiaas_postgres::connect(&settings(bouncer, db))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", bouncer.log()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_of_random_transfers_through_pgbouncer_keep_every_invariant() {
    let db = TestDb::with_pool(4).await;
    let bouncer = bouncer(&db).await;
    let pool = pool(&bouncer, &db).await;
    // Batched (the default) and one by one.
    crate::concurrency::thirty_two_tasks_on(
        &db,
        Postgres::new(pool.clone()).with_batching(waiaas_postgres::Batching {
            workers: 4,
            max_batch: 64,
        }),
    )
    .await;
    crate::concurrency::racing_the_daily_limit_on(Postgres::new(pool)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_pgbouncer_each_transaction_carries_the_timeouts() {
    let db = TestDb::with_pool(4).await;
    let bouncer = bouncer(&db).await;
    let pool = pool(&bouncer, &db).await;
    let pg = Postgres::new(pool);
    let services = services(&pg);
    let world = Fixture::world(&services).await;
    let (a, b) = (
        world.wallet("USD", 1_000).await.id,
        world.wallet("USD", 0).await.id,
    );
    // A wallet locked by other work, directly on the server: the transfer gives up after the
    // pool's lock timeout (300 ms), set in its transaction, not after the statement timeout.
    let blocker = crate::lock_wallet(&db.db, a).await;
    let busy = tokio::time::timeout(
        Duration::from_secs(8),
        services.transfer(
            &world.agent(),
            World::transfer_request(a, b, 10),
            &world.agent_ctx(),
        ),
    )
    .await
    .expect("ended by the lock timeout, not by the statement timeout (10 s), nor never")
    .expect_err("the wallet is locked");
    blocker.rollback().await.unwrap();
    let waiaas_domain::PostingError::Unknown(busy) = busy else {
        panic!("{busy:?}");
    };
    assert_eq!(
        waiaas_domain::Fault::of(&busy),
        Some(waiaas_domain::Fault::WalletBusy),
        "{busy:#}"
    );
    // The same transfer goes through once the wallet is free.
    let done = services
        .transfer(
            &world.agent(),
            World::transfer_request(a, b, 10),
            &world.agent_ctx(),
        )
        .await
        .expect("transfer");
    assert_eq!(
        done.transaction.status,
        waiaas_domain::model::TransactionStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_pgbouncer_an_advisory_lock_excludes_until_released() {
    let db = TestDb::with_pool(4).await;
    let bouncer = PgBouncer::start(&db.url, 3).await.expect("pgbouncer");
    let s = settings(&bouncer, &db);
    let (one, two) = (
        AdvisoryLocks::new(waiaas_postgres::connect(&s).await.unwrap()),
        AdvisoryLocks::new(waiaas_postgres::connect(&s).await.unwrap()),
    );
    let ttl = Duration::from_secs(30);
    let lease = one
        .acquire("pooler-test", ttl)
        .await
        .unwrap()
        .expect("free");
    // Each held lock keeps a server connection (its transaction); other work goes on over
    // the one left.
    let other = two.acquire("another", ttl).await.unwrap().expect("free");
    for _ in 0..5 {
        assert!(
            two.acquire("pooler-test", ttl).await.unwrap().is_none(),
            "held by the other instance"
        );
        let lease = one.acquire("another", ttl).await.unwrap();
        assert!(lease.is_none(), "a lock is held until released");
    }
    assert!(two.release(&other).await.unwrap());
    assert!(one.release(&lease).await.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while two.acquire("pooler-test", ttl).await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "released: the other instance takes it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
