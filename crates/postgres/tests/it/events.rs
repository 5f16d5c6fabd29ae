//! The transactional outbox against a real PostgreSQL: every change of a transaction (and of
//! an agent, a key, a session, a policy, a budget or a mandate) writes exactly one event in
//! its own commit (a replay writes none), and placing them in the stream
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
        .filter(|e| e.transaction().is_some_and(|t| t.id == tx))
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
        .find(|e| e.transaction().is_some_and(|t| t.id == hold.id) && e.kind == "hold.placed")
        .unwrap();
    assert_eq!(placed.transaction().unwrap().status.as_str(), "held");
    assert_eq!(placed.transaction().unwrap().amount, hold.amount);
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // Of one wallet: the payee sees the transfers it received.
    let of_b = pg.after(start, Some(b), 1_000).await.unwrap();
    assert!(of_b.iter().all(|e| e.touches(b)));
    assert!(
        of_b.iter()
            .any(|e| e.transaction().is_some_and(|t| t.id == paid.id))
    );
    // Nothing is left to place, and placing again changes nothing.
    assert_eq!(pg.sequence(1_000).await.unwrap(), 0);
    assert_eq!(drain(&pg, start).await, events);
}

/// Agents, keys, sessions, policies, budgets and mandates write their events in their own
/// commits, as transactions do: one per change, in order, each carrying the record as the
/// change left it and never a credential's hash; a policy's and a mandate's events belong to
/// their wallet's stream.
#[tokio::test]
async fn every_change_of_an_agent_key_session_policy_budget_and_mandate_writes_one_event() {
    let db = TestDb::new().await;
    let pg = db.postgres();
    let services = services(&pg);
    let start = drain(&pg, 0).await.last().map_or(0, |e| e.id);
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 1_000).await.id;
    let owner_ctx = world.owner_ctx();
    world
        .set_rules(
            a,
            PolicyRules {
                daily_limit: Some(waiaas_domain::Money::new(500).unwrap()),
                ..PolicyRules::default()
            },
        )
        .await;
    let budget: waiaas_domain::policy::Budgets = [(
        waiaas_domain::AssetCode::parse("USD").unwrap(),
        waiaas_domain::BudgetLimits {
            daily_limit: Some(waiaas_domain::Money::new(300).unwrap()),
            ..Default::default()
        },
    )]
    .into();
    services
        .set_agent_budget(&world.owner(), world.agent_id, budget, &owner_ctx)
        .await
        .unwrap();
    let (key_id, key) = services
        .create_agent_key(world.owner_id, world.agent_id, &owner_ctx)
        .await
        .unwrap();
    let (session, token) = services
        .create_session(&world.agent(), key.expose(), &world.agent_ctx())
        .await
        .unwrap();
    assert!(
        services
            .revoke_session(token.expose(), &world.agent_ctx())
            .await
            .unwrap()
    );
    let mandate = services
        .create_mandate(
            &world.owner(),
            waiaas_domain::services::MandateRequest {
                wallet_id: a,
                max_amount: 50,
                total_amount: None,
                max_uses: Some(2),
                to_wallet_id: None,
                destination: None,
                expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
            },
            &owner_ctx,
        )
        .await
        .unwrap();
    services
        .revoke_mandate(&world.owner(), mandate.id, &owner_ctx)
        .await
        .unwrap();
    for status in [
        waiaas_domain::AgentStatus::Suspended,
        waiaas_domain::AgentStatus::Active,
    ] {
        services
            .set_agent_status(world.owner_id, world.agent_id, status, &owner_ctx)
            .await
            .unwrap();
    }
    services
        .delete_agent(world.owner_id, world.agent_id, &owner_ctx)
        .await
        .unwrap();

    let events: Vec<Event> = drain(&pg, start)
        .await
        .into_iter()
        .filter(|e| e.transaction().is_none())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "api_key.created", // the owner's first key
            "agent.created",
            "policy.updated",
            "budget.updated",
            "api_key.created",
            "session.revoked",
            "mandate.created",
            "mandate.revoked",
            "agent.suspended",
            "agent.activated",
            "agent.deleted",
            "api_key.revoked", // deleting the agent revoked its key
        ]
    );
    assert!(
        kinds
            .iter()
            .all(|k| waiaas_domain::webhooks::EVENT_TYPES.contains(k)),
        "a webhook can ask for each of them by name"
    );
    assert!(events.iter().all(|e| e.owner_id == world.owner_id));
    let data = |kind: &str| {
        events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.record())
            .next_back()
            .unwrap()
    };
    let revoked = data("api_key.revoked");
    assert_eq!(revoked["id"], key_id.to_string());
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert_eq!(data("session.revoked")["id"], session.id.to_string());
    for e in &events {
        let text = e.record().to_string();
        assert!(!text.contains("hash"), "{}: {text}", e.kind);
        assert!(!text.contains(key.expose()), "{}: {text}", e.kind);
    }
    assert_eq!(data("policy.updated")["rules"]["daily_limit"], 500);
    assert_eq!(data("budget.updated")["limits"]["USD"]["daily_limit"], 300);
    assert_eq!(data("agent.suspended")["status"], "suspended");
    assert_eq!(data("mandate.revoked")["id"], mandate.id.to_string());
    // The wallet's stream has its policy and its mandate, and nothing about the agent.
    let of_a: Vec<String> = pg
        .after(start, Some(a), 1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.transaction().is_none())
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        of_a,
        ["policy.updated", "mandate.created", "mandate.revoked"]
    );
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
                    seen.extend(e.transaction().map(|t| t.id));
                }
                if finished && page.is_empty() {
                    // One last look after the placers stopped.
                    while pg.sequence(1_000).await.unwrap() > 0 {}
                    let rest = pg.after(cursor, None, 10_000).await.unwrap();
                    seen.extend(rest.iter().filter_map(|e| e.transaction().map(|t| t.id)));
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
