//! The cache fence and the advisory-lock fallback against a real PostgreSQL.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use uuid::Uuid;
use waiaas_domain::ports::{CacheFence, LockManager};
use waiaas_postgres::AdvisoryLocks;
use waiaas_testkit::TestDb;

#[tokio::test]
async fn a_stale_mark_stops_leases_and_the_next_renewal_after_a_bump_starts_a_new_epoch() {
    let db = TestDb::new().await;
    let pg = db.postgres();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let e1 = pg
        .renew_lease(a, Duration::from_secs(2))
        .await
        .unwrap()
        .expect("a lease");
    assert_eq!(
        pg.renew_lease(b, Duration::from_millis(400)).await.unwrap(),
        Some(e1)
    );

    // a's write failed to reach Redis: it gives up its lease and waits for b's.
    assert_eq!(pg.mark_stale(a).await.unwrap(), e1);
    let wait = pg.lease_wait(a).await.unwrap();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(400),
        "only b's lease counts: {wait:?}"
    );
    // Marking again (another failed write) is cheap and says the same.
    assert_eq!(pg.mark_stale(a).await.unwrap(), e1);

    // No lease is granted under the stale epoch; after a bump, one is, under a new epoch.
    assert_eq!(
        pg.renew_lease(a, Duration::from_secs(2)).await.unwrap(),
        None
    );
    pg.bump_epoch().await.unwrap();
    pg.bump_epoch().await.unwrap();
    assert_eq!(
        pg.renew_lease(a, Duration::from_secs(2)).await.unwrap(),
        Some(e1 + 1),
        "one bump, however many ask"
    );
    assert_eq!(
        pg.renew_lease(b, Duration::from_millis(400)).await.unwrap(),
        Some(e1 + 1)
    );
    pg.release_lease(b).await.unwrap();
    assert!(
        pg.lease_wait(a).await.unwrap().is_zero(),
        "a released lease is not waited for"
    );
}

#[tokio::test]
async fn the_leases_read_after_a_mark_include_a_renewal_the_mark_had_to_wait_for() {
    let db = TestDb::new().await;
    let pg = db.postgres();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let epoch = pg
        .renew_lease(a, Duration::from_secs(2))
        .await
        .unwrap()
        .unwrap();

    // b's renewal is under way: it holds the epoch row's share lock and has written its
    // lease, not yet committed.
    let renewal = db.db.begin().await.unwrap();
    renewal
        .execute_unprepared("SELECT epoch FROM cache_epoch WHERE id = 1 AND NOT dirty FOR SHARE")
        .await
        .unwrap();
    renewal
        .execute_unprepared(&format!(
            "INSERT INTO cache_leases (instance_id, epoch, lease_until, renewed_at) \
             VALUES ('{b}', {epoch}, now() + interval '3 seconds', now())"
        ))
        .await
        .unwrap();

    // a marks the epoch stale: the mark waits for b's share lock.
    let marker = {
        let pg = pg.clone();
        tokio::spawn(async move { pg.mark_stale(a).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = db
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query LIKE 'WITH mark AS%'",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        if waiting == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the mark never waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    renewal.commit().await.unwrap();
    assert_eq!(marker.await.unwrap().unwrap(), epoch);

    // The mark's own statement could not see b's lease (its snapshot predates b's commit);
    // the leases read after it do.
    let wait = pg.lease_wait(a).await.unwrap();
    assert!(
        wait > Duration::from_secs(2),
        "b's lease, granted before the mark, must be waited for: {wait:?}"
    );
}

#[tokio::test]
async fn an_advisory_lock_is_exclusive_owned_and_expires() {
    let db = TestDb::new().await;
    let locks = AdvisoryLocks::new(db.db.clone());
    let other = AdvisoryLocks::new(db.db.clone());
    let lease = locks
        .acquire("job:name:sweep", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("free lock");
    assert!(
        other
            .acquire("job:name:sweep", Duration::from_secs(30))
            .await
            .unwrap()
            .is_none(),
        "held elsewhere"
    );
    let forged = waiaas_domain::ports::LockLease {
        resource: lease.resource.clone(),
        token: "forged".into(),
    };
    assert!(
        !locks.release(&forged).await.unwrap(),
        "a non-owner cannot release"
    );
    assert!(
        !locks.extend(&forged, Duration::from_secs(1)).await.unwrap(),
        "a non-owner cannot extend"
    );
    assert!(locks.release(&lease).await.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let short = loop {
        if let Some(l) = other
            .acquire("job:name:sweep", Duration::from_millis(200))
            .await
            .unwrap()
        {
            break l;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "released lock never became free"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let _ = short;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while locks
        .acquire("job:name:sweep", Duration::from_secs(1))
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lock never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_instance_cut_off_from_redis_blocks_every_lease_until_it_is_back() {
    let db = TestDb::new().await;
    let pg = db.postgres();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let epoch = pg
        .renew_lease(b, Duration::from_secs(2))
        .await
        .unwrap()
        .expect("b's lease");
    // a cannot reach Redis: it blocks leases; b's lease, granted before, is waited for.
    assert_eq!(
        pg.block_leases(a, Duration::from_secs(3)).await.unwrap(),
        epoch
    );
    assert!(pg.lease_wait(a).await.unwrap() > Duration::from_secs(1));
    // Nobody gets a lease while the block holds, even after a new epoch is started.
    assert_eq!(
        pg.renew_lease(b, Duration::from_secs(2)).await.unwrap(),
        None
    );
    pg.bump_epoch().await.unwrap();
    assert_eq!(
        pg.renew_lease(b, Duration::from_secs(2)).await.unwrap(),
        None
    );
    // a is back: b leases again.
    pg.unblock_leases(a).await.unwrap();
    assert_eq!(
        pg.renew_lease(b, Duration::from_secs(2)).await.unwrap(),
        Some(epoch + 1)
    );
    // A block that is not renewed ends by itself (an instance that crashed while cut off).
    pg.block_leases(a, Duration::from_millis(200))
        .await
        .unwrap();
    pg.bump_epoch().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while pg
        .renew_lease(b, Duration::from_secs(2))
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the block never expired"
        );
        pg.bump_epoch().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A held advisory lock keeps a pooled connection; closing the pool (an instance shutting
/// down, with a job's lease still held because its task was stopped mid-run) releases it at
/// once instead of waiting out the lease.
#[tokio::test]
async fn closing_the_pool_ends_the_advisory_locks_it_holds() {
    let db = TestDb::new().await;
    let pool = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    let locks = AdvisoryLocks::new(pool.clone());
    let lease = locks
        .acquire("job:name:shutdown", Duration::from_secs(600))
        .await
        .unwrap();
    assert!(lease.is_some());
    tokio::time::timeout(Duration::from_secs(60), pool.close())
        .await
        .expect("the pool closed without waiting for the lease's ten minutes")
        .unwrap();
    // Released in PostgreSQL too: another connection takes it.
    let other = AdvisoryLocks::new(db.db.clone());
    assert!(
        other
            .acquire("job:name:shutdown", Duration::from_secs(1))
            .await
            .unwrap()
            .is_some()
    );
}
