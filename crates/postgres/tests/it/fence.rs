//! The cache fence and the advisory-lock fallback against a real PostgreSQL.

use std::time::Duration;

use uuid::Uuid;
use waiaas_domain::ports::{CacheFence, LockManager};
use waiaas_postgres::AdvisoryLocks;
use waiaas_testkit::TestDb;

#[tokio::test]
async fn a_stale_mark_waits_for_other_leases_and_the_next_renewal_starts_a_new_epoch() {
    let db = TestDb::new().await;
    let pg = db.postgres();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let e1 = pg.renew_lease(a, Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        pg.renew_lease(b, Duration::from_millis(400)).await.unwrap(),
        e1
    );

    // a's write failed to reach Redis: it gives up its lease and waits for b's.
    let (epoch, wait) = pg.mark_stale(a).await.unwrap();
    assert_eq!(epoch, e1);
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(400),
        "only b's lease counts: {wait:?}"
    );
    // Marking again (another failed write) is cheap and says the same.
    let (again, _) = pg.mark_stale(a).await.unwrap();
    assert_eq!(again, e1);

    // No lease is granted under the stale epoch: the next renewal starts a new one.
    let e2 = pg.renew_lease(a, Duration::from_secs(2)).await.unwrap();
    assert_eq!(e2, e1 + 1);
    assert_eq!(
        pg.renew_lease(b, Duration::from_millis(400)).await.unwrap(),
        e2,
        "one bump serves everyone"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !pg.wait_for_leases(a, e1).await.unwrap().is_zero() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "b's old lease never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pg.release_lease(b).await.unwrap();
    assert!(
        pg.wait_for_leases(a, e2).await.unwrap().is_zero(),
        "a released lease is not waited for"
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
