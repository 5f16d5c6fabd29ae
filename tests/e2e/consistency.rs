//! The fault test of the cache layer: two instances share PostgreSQL and a `redis-server`
//! that the test kills, restarts and pauses while writers move money and set policies and
//! readers read balances and policies through both instances. Afterwards: no operation
//! failed, no read that started after a write's acknowledgement returned an older version
//! (also after recovery), and the ledger reconciles.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use waiaas_app::App;
use waiaas_domain::{Money, PolicyRules, TransactionStatus, WalletId};
use waiaas_testkit::{Fixture, History, RedisServer, Resource, TestDb, World};
use waiaas_tests::{Options, TestApp};

async fn instance(db: &TestDb, redis: &RedisServer, prefix: &str) -> App {
    let mut settings = TestApp::settings(
        db,
        &Options {
            redis_url: Some(redis.url()),
            key_prefix: Some(prefix.to_owned()),
            ..Options::default()
        },
    );
    settings.cache.lease_ms = 1_000;
    waiaas_app::build(&settings).await.expect("instance")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_restarting_and_pausing_redis_causes_no_failure_and_no_stale_read() {
    let db = TestDb::with_pool(4).await;
    let mut redis = RedisServer::start().await.expect("redis-server");
    let prefix = waiaas_testkit::unique_prefix();
    let instances = Arc::new([
        instance(&db, &redis, &prefix).await,
        instance(&db, &redis, &prefix).await,
    ]);
    let world = Fixture::world(&instances[0].services).await;
    let mut wallets = Vec::new();
    for _ in 0..6 {
        wallets.push(world.wallet("USD", 10_000).await.id);
    }
    let wallets: Arc<Vec<WalletId>> = Arc::new(wallets);
    let history = Arc::new(History::new());
    let stop = Arc::new(AtomicBool::new(false));
    let (ops, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));

    let mut tasks = Vec::new();
    for t in 0..8_usize {
        let (instances, wallets, history, stop, ops, failed, world) = (
            instances.clone(),
            wallets.clone(),
            history.clone(),
            stop.clone(),
            ops.clone(),
            failed.clone(),
            world.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                i += 7;
                let app = &instances[i % 2];
                let (w, w2) = (
                    wallets[i % wallets.len()],
                    wallets[(i / 3 + 1) % wallets.len()],
                );
                let result = match t % 4 {
                    // Writers: transfers through either instance.
                    0 | 1 if w != w2 => {
                        let req = World::transfer_request(w, w2, 1 + (i as i64 % 5));
                        app.services
                            .transfer(&world.agent(), req, &world.agent_ctx())
                            .await
                            .map(|out| {
                                assert_eq!(out.transaction.status, TransactionStatus::Completed);
                                for b in &out.balances {
                                    history.write(Resource::Balance(b.wallet_id), b.version);
                                }
                            })
                            .map_err(|e| e.to_string())
                    }
                    // A policy writer.
                    2 if i % 5 == 0 => {
                        let rules = PolicyRules {
                            daily_limit: Some(Money::new(1_000_000 + i as i64).unwrap()),
                            ..Default::default()
                        };
                        app.services
                            .set_policy(&world.owner(), w, rules, &world.owner_ctx())
                            .await
                            .map(|p| history.write(Resource::Policy(w), p.version))
                            .map_err(|e| e.to_string())
                    }
                    // Readers: balances and policies through either instance.
                    2 | 3 => {
                        let label = if i % 2 == 0 {
                            "instance-a"
                        } else {
                            "instance-b"
                        };
                        let start = Instant::now();
                        if i % 3 == 0 {
                            app.services
                                .get_policy(&world.agent(), w)
                                .await
                                .map(|p| history.read(Resource::Policy(w), start, p.version, label))
                                .map_err(|e| e.to_string())
                        } else {
                            app.services
                                .balance(&world.agent(), w)
                                .await
                                .map(|b| {
                                    history.read(Resource::Balance(w), start, b.version, label)
                                })
                                .map_err(|e| e.to_string())
                        }
                    }
                    _ => Ok(()),
                };
                ops.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = result {
                    failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("operation failed: {e}");
                }
            }
        }));
    }

    let phase = |d: u64| tokio::time::sleep(Duration::from_millis(d));
    phase(1_500).await;
    redis.kill();
    phase(2_000).await;
    redis.restart().await.expect("restart");
    phase(2_500).await;
    redis
        .pause(Duration::from_millis(800))
        .await
        .expect("pause");
    phase(2_500).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("task");
    }

    // After recovery, fresh reads through both instances agree with PostgreSQL.
    for app in instances.iter() {
        for w in wallets.iter() {
            let start = Instant::now();
            let b = app
                .services
                .balance(&world.agent(), *w)
                .await
                .expect("read after recovery");
            history.read(Resource::Balance(*w), start, b.version, "after-recovery");
        }
    }
    let report = history.check();
    let stat = |f: fn(&waiaas_cache::CacheStats) -> &std::sync::atomic::AtomicU64| -> u64 {
        instances
            .iter()
            .map(|i| waiaas_cache::CacheStats::get(f(&i.cache.as_ref().expect("cache").stats)))
            .sum()
    };
    let (hits, fences, failures) = (
        stat(|s| &s.l2_hits),
        stat(|s| &s.fences),
        stat(|s| &s.write_failures),
    );
    eprintln!(
        "operations {}, writes {}, reads {}, stale {}, l2 hits {hits}, failed write-throughs {failures}, epoch bumps {fences}",
        ops.load(Ordering::Relaxed),
        report.writes,
        report.reads,
        report.stale_count
    );
    assert!(
        hits > 100,
        "the cache served reads (else this test proves nothing): {hits}"
    );
    assert!(
        failures > 0 && fences > 0,
        "the faults hit write-throughs and raised the fence"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no operation failed because of Redis"
    );
    assert!(
        report.writes > 100 && report.reads > 100,
        "the run did work: {report:?}"
    );
    assert_eq!(report.stale_count, 0, "stale reads: {:?}", report.stale);
    let reconcile = waiaas_postgres_like_reconcile(&db).await;
    assert!(reconcile, "the ledger reconciles");
    for app in instances.iter() {
        app.shutdown().await;
    }
}

async fn waiaas_postgres_like_reconcile(db: &TestDb) -> bool {
    let mut s = waiaas_app::Settings::default();
    s.database.url = db.url.clone();
    s.database.min_connections = 0;
    s.database.max_connections = 2;
    waiaas_app::commands::reconcile(&s)
        .await
        .expect("reconcile ran")
}
