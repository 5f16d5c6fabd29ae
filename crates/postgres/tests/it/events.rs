//! The transactional outbox against a real PostgreSQL: every change of a transaction writes
//! exactly one event in its own commit (a replay writes none), and placing them in the stream
//! while postings and other placers run at once gives every event exactly one place, read by
//! a reader polling all along exactly once and in order.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use waiaas_domain::ports::EventLog as _;
use waiaas_domain::services::TransferRequest;
use waiaas_domain::{Event, PolicyRules, TransactionId};
use waiaas_testkit::{Fixture, TestDb, World, services};

/// Places everything, then reads every event after `after`.
async fn drain(pg: &waiaas_postgres::Postgres, after: i64) -> Vec<Event> {
    while pg.sequence(1_000).await.unwrap() > 0 {}
    pg.after(after, None, 10_000).await.unwrap()
}

fn kinds(events: &[Event], tx: TransactionId) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.transaction.id == tx)
        .map(|e| e.kind.clone())
        .collect()
}

#[tokio::test]
async fn every_change_of_a_transaction_writes_one_event_and_a_replay_none() {
    let db = TestDb::new().await;
    let pg = db.postgres();
    let services = services(&pg);
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 1_000).await.id;
    let b = world.wallet("USD", 0).await.id;
    let start = pg.bounds().await.unwrap().head;

    let paid = world.spend(a, b, 10).await.transaction;
    let keyed = TransferRequest {
        idempotency_key: Some("once".to_owned()),
        ..World::transfer_request(a, b, 5)
    };
    let first = services
        .transfer(&world.agent(), keyed.clone(), &world.agent_ctx())
        .await
        .unwrap();
    let replay = services
        .transfer(&world.agent(), keyed, &world.agent_ctx())
        .await
        .unwrap();
    assert!(replay.replayed);
    world
        .set_rules(
            a,
            PolicyRules {
                approval_above: Some(waiaas_domain::Money::new(100).unwrap()),
                ..PolicyRules::default()
            },
        )
        .await;
    let pending = world.spend(a, b, 150).await.transaction;
    services
        .decide(&world.owner(), pending.id, true, &world.owner_ctx())
        .await
        .unwrap();
    let hold = world.hold(a, b, 40).await.transaction;
    let capture = world.capture(hold.id, Some(30)).await.unwrap().transaction;
    let voided = world.hold(a, b, 20).await.transaction;
    services
        .void_hold(&world.agent(), voided.id, &world.agent_ctx())
        .await
        .unwrap();

    let events = drain(&pg, start).await;
    assert_eq!(kinds(&events, paid.id), ["transaction.completed"]);
    assert_eq!(
        kinds(&events, first.transaction.id),
        ["transaction.completed"],
        "the replay wrote nothing"
    );
    assert_eq!(
        kinds(&events, pending.id),
        ["transaction.pending_approval", "transaction.completed"]
    );
    assert_eq!(kinds(&events, hold.id), ["hold.placed", "hold.captured"]);
    assert_eq!(kinds(&events, capture.id), ["transaction.completed"]);
    assert_eq!(kinds(&events, voided.id), ["hold.placed", "hold.voided"]);
    // The event carries the transaction as that change left it.
    let placed = events
        .iter()
        .find(|e| e.transaction.id == hold.id && e.kind == "hold.placed")
        .unwrap();
    assert_eq!(placed.transaction.status.as_str(), "held");
    assert_eq!(placed.transaction.amount, hold.amount);
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // Of one wallet: the payee sees the transfers it received.
    let of_b = pg.after(start, Some(b), 1_000).await.unwrap();
    assert!(of_b.iter().all(|e| e.touches(b)));
    assert!(of_b.iter().any(|e| e.transaction.id == paid.id));
    // Nothing is left to place, and placing again changes nothing.
    assert_eq!(pg.sequence(1_000).await.unwrap(), 0);
    assert_eq!(drain(&pg, start).await, events);
}

/// Postings from four tasks while two placers run and a reader polls: every event gets one
/// place, and the reader, asking only for what is after the last place it saw, sees every
/// event exactly once, in increasing order: no event is ever placed below one already read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_placed_while_postings_commit_are_read_once_in_order() {
    let db = TestDb::with_pool(16).await;
    let pg = db.postgres();
    let services = services(&pg);
    let world = Fixture::world(&services).await;
    let mut wallets = Vec::new();
    for _ in 0..4 {
        wallets.push(world.wallet("USD", 100_000).await.id);
    }
    while pg.sequence(1_000).await.unwrap() > 0 {}
    let start = pg.bounds().await.unwrap().head;

    let done = Arc::new(AtomicBool::new(false));
    let placers: Vec<_> = (0..2)
        .map(|_| {
            let (pg, done) = (pg.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::SeqCst) {
                    pg.sequence(7).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let reader = {
        let (pg, done) = (pg.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut cursor = start;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = pg.after(cursor, None, 50).await.unwrap();
                for e in &page {
                    assert!(e.id > cursor, "{} after {cursor}", e.id);
                    cursor = e.id;
                    seen.push(e.transaction.id);
                }
                if finished && page.is_empty() {
                    // One last look after the placers stopped.
                    while pg.sequence(1_000).await.unwrap() > 0 {}
                    let rest = pg.after(cursor, None, 10_000).await.unwrap();
                    seen.extend(rest.iter().map(|e| e.transaction.id));
                    return seen;
                }
            }
        })
    };
    let posters: Vec<_> = (0..4)
        .map(|i| {
            let (world, wallets) = (world.clone(), wallets.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..40 {
                    let from = wallets[(i + n) % 4];
                    let to = wallets[(i + n + 1) % 4];
                    ids.push(world.spend(from, to, 1).await.transaction.id);
                }
                ids
            })
        })
        .collect();
    let mut posted = HashSet::new();
    for p in posters {
        posted.extend(p.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    for p in placers {
        p.await.unwrap();
    }
    let seen = reader.await.unwrap();
    assert_eq!(seen.len(), posted.len(), "each event read once");
    assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), posted);
}
