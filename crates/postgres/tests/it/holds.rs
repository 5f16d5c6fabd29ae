//! Holds against a real PostgreSQL: what a hold reserves, what a capture moves and releases,
//! expiry by racing sweepers (and by a posting that gets there first), many holds, captures,
//! voids and payments at once, and random sequences checked against a model.

use std::sync::Arc;

use chrono::{Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use waiaas_domain::model::{TransactionKind, TransactionStatus};
use waiaas_domain::ports::{TransactionRepository as _, WalletRepository as _};
use waiaas_domain::services::{HoldRequest, TransferRequest};
use waiaas_domain::{Level, Money, PolicyRules, PostingError, TransactionId, WalletId};
use waiaas_testkit::{Fixture, TestDb, World, services};

fn money(v: i64) -> Money {
    Money::new(v).unwrap()
}

async fn balance(db: &TestDb, w: WalletId) -> (i64, i64) {
    let b = db.postgres().balance(w).await.unwrap().unwrap();
    (b.balance.minor_units(), b.held.minor_units())
}

async fn spent_today(db: &TestDb, w: WalletId) -> i64 {
    let s = db
        .postgres()
        .summary(w, Utc::now().date_naive())
        .await
        .unwrap()
        .unwrap();
    s.today.spent.minor_units()
}

async fn audit_count(db: &TestDb, action: &str) -> i64 {
    db.db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM audit_logs WHERE action = $1",
            [action.into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap()
}

/// What a sweep that must not fail ended.
fn ended(ended: waiaas_domain::ports::Ended) -> Vec<waiaas_domain::ports::PostingOutcome> {
    if let Some(e) = ended.failed {
        panic!("the sweep failed: {e:#}");
    }
    ended.outcomes
}

fn payment(from: WalletId, amount: i64) -> TransferRequest {
    TransferRequest {
        to_wallet_id: None,
        destination: Some("merchant-7".into()),
        ..World::transfer_request(from, from, amount)
    }
}

async fn assert_reconciled(db: &TestDb) {
    let report = waiaas_postgres::reconcile(&db.db).await.unwrap();
    assert!(report.is_consistent(), "{report}");
}

#[tokio::test]
async fn a_hold_reserves_its_amount_and_a_partial_capture_releases_the_rest() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 2_000).await.id;
    let b = world.wallet("USD", 0).await.id;
    let limit = PolicyRules {
        daily_limit: Some(money(1_000)),
        ..PolicyRules::default()
    };
    world.set_rules(a, limit.clone()).await;

    let hold = world.hold(a, b, 300).await.transaction;
    assert_eq!(hold.kind, TransactionKind::Hold);
    assert_eq!(hold.status, TransactionStatus::Held);
    assert!(hold.hold.expires_at.is_some());
    assert_eq!(balance(&db, a).await, (2_000, 300));
    assert_eq!(spent_today(&db, a).await, 300, "a hold counts as spent");

    // A hold counts against the day's limit, for spends and holds alike…
    let over_limit = world.spend(a, b, 701).await.transaction;
    assert_eq!(over_limit.status, TransactionStatus::Denied);
    let second = world.hold(a, b, 701).await.transaction;
    assert_eq!(second.status, TransactionStatus::Denied, "holds count too");
    // …and what it reserves cannot be spent.
    world.set_rules(a, PolicyRules::default()).await;
    let over_available = world.spend(a, b, 1_701).await.transaction;
    assert_eq!(over_available.status, TransactionStatus::Failed);
    let over_available = world.hold(a, b, 1_701).await.transaction;
    assert_eq!(over_available.status, TransactionStatus::Failed);
    world.set_rules(a, limit).await;

    let capture = world.capture(hold.id, Some(120)).await.unwrap();
    let tx = capture.transaction;
    assert_eq!(
        (tx.kind, tx.status, tx.amount),
        (
            TransactionKind::Transfer,
            TransactionStatus::Completed,
            money(120)
        )
    );
    assert_eq!(tx.hold.hold_id, Some(hold.id));
    assert_eq!(balance(&db, a).await, (1_880, 0));
    assert_eq!(balance(&db, b).await, (120, 0));
    assert_eq!(
        spent_today(&db, a).await,
        120,
        "what was not captured went back to the day's budget"
    );
    let ended = services.get_hold(&world.agent(), hold.id).await.unwrap();
    assert_eq!(ended.status, TransactionStatus::Captured);
    assert_eq!(ended.hold.captured, Some(money(120)));

    // One capture per hold; a captured hold cannot be voided.
    assert!(matches!(
        world.capture(hold.id, Some(1)).await,
        Err(PostingError::HoldNotOpen {
            status: TransactionStatus::Captured,
            ..
        })
    ));
    assert!(matches!(
        services
            .void_hold(&world.owner(), hold.id, &world.owner_ctx())
            .await,
        Err(PostingError::HoldNotOpen { .. })
    ));
    // No more than the hold.
    let small = world.hold(a, b, 100).await.transaction;
    assert!(matches!(
        world.capture(small.id, Some(101)).await,
        Err(PostingError::CaptureExceedsHold { .. })
    ));
    // Another agent's hold is not found; a transaction that is no hold is not one.
    let other = Fixture::world(&services).await;
    assert!(matches!(
        other.capture(small.id, None).await,
        Err(PostingError::HoldNotFound(_))
    ));
    assert!(matches!(
        world.capture(tx.id, None).await,
        Err(PostingError::HoldNotFound(_))
    ));
    // A void releases everything, once; a second void answers the hold as it is.
    let voided = services
        .void_hold(&world.agent(), small.id, &world.agent_ctx())
        .await
        .unwrap();
    assert_eq!(voided.transaction.status, TransactionStatus::Voided);
    assert!(!voided.replayed);
    let again = services
        .void_hold(&world.owner(), small.id, &world.owner_ctx())
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(balance(&db, a).await, (1_880, 0));
    assert_eq!(spent_today(&db, a).await, 120);
    assert_eq!(audit_count(&db, "hold.place").await, 2);
    assert_eq!(audit_count(&db, "hold.capture").await, 1);
    assert_eq!(audit_count(&db, "hold.void").await, 1);
    assert_reconciled(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_hold_is_released_once_by_racing_sweepers_and_first_by_a_spend() {
    let db = TestDb::with_pool(12).await;
    let pg = db.postgres();
    let services = services(&pg);
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 1_000).await.id;
    let b = world.wallet("USD", 0).await.id;
    let mut holds = Vec::new();
    for amount in [100, 200, 300] {
        holds.push(world.hold(a, b, amount).await.transaction.id);
    }
    assert_eq!(balance(&db, a).await, (1_000, 600));

    // Four sweepers at once, an hour after the holds expired: each hold released once.
    let later = Utc::now() + Duration::hours(2);
    let sweepers: Vec<_> = (0..4)
        .map(|_| {
            let pg = pg.clone();
            tokio::spawn(async move { ended(pg.expire_holds(later, 100).await) })
        })
        .collect();
    let mut released = 0;
    for s in sweepers {
        released += s.await.unwrap().len();
    }
    assert_eq!(released, 3, "every expired hold released exactly once");
    assert_eq!(ended(pg.expire_holds(later, 100).await).len(), 0);
    assert_eq!(balance(&db, a).await, (1_000, 0));
    assert_eq!(spent_today(&db, a).await, 0);
    assert_eq!(audit_count(&db, "hold.expire").await, 3);
    for id in &holds {
        let h = services.get_hold(&world.agent(), *id).await.unwrap();
        assert_eq!(h.status, TransactionStatus::Expired);
        assert_eq!(h.hold.captured, Some(Money::ZERO));
        assert!(matches!(
            world.capture(*id, None).await,
            Err(PostingError::HoldExpired)
        ));
    }

    // Before any sweeper: a hold past its expiry reads expired, and a spend that needs what
    // it reserved releases it itself.
    let hold = services
        .create_hold(
            &world.agent(),
            HoldRequest {
                spend: World::transfer_request(a, b, 900),
                expires_in_s: Some(1),
            },
            &world.agent_ctx(),
        )
        .await
        .unwrap()
        .transaction;
    assert_eq!(balance(&db, a).await, (1_000, 900));
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let read = services.get_hold(&world.agent(), hold.id).await.unwrap();
    assert_eq!(read.status, TransactionStatus::Expired, "read as expired");
    let spend = world.spend(a, b, 800).await.transaction;
    assert_eq!(spend.status, TransactionStatus::Completed);
    assert_eq!(balance(&db, a).await, (200, 0));
    assert_eq!(ended(pg.expire_holds(later, 100).await).len(), 0);
    assert_eq!(audit_count(&db, "hold.expire").await, 4);
    assert_reconciled(&db).await;
}

/// Three agents of one owner, two wallets each with a daily limit; 200 holds, captures,
/// voids and payments at once. Afterwards no wallet spent more than its limit, every open
/// hold is in `held` (reconcile), and the balances are the deposits less what was paid out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_captures_voids_and_payments_at_once_keep_every_limit_and_the_ledger() {
    holds_captures_voids_and_payments_at_once(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_captures_voids_and_payments_at_once_in_batches_keep_every_limit() {
    holds_captures_voids_and_payments_at_once(64).await;
}

async fn holds_captures_voids_and_payments_at_once(max_batch: usize) {
    const LIMIT: i64 = 1_500;
    let db = TestDb::with_pool(16).await;
    let pg = db.postgres_batched(4, max_batch);
    let services = services(&pg);
    let first = Fixture::world(&services).await;
    let mut agents = vec![first.clone()];
    for name in ["second agent", "third agent"] {
        let agent = services
            .create_agent(first.owner_id, name, &first.owner_ctx())
            .await
            .unwrap();
        agents.push(World {
            agent_id: agent.id,
            ..first.clone()
        });
    }
    let mut wallets = Vec::new();
    for agent in &agents {
        for _ in 0..2 {
            let w = agent.wallet("USD", 2_000).await.id;
            agent
                .set_rules(
                    w,
                    PolicyRules {
                        daily_limit: Some(money(LIMIT)),
                        ..PolicyRules::default()
                    },
                )
                .await;
            wallets.push((agent.clone(), w));
        }
    }
    let wallets = Arc::new(wallets);
    let paid = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let tasks: Vec<_> = (0..20_u64)
        .map(|task| {
            let (wallets, paid) = (wallets.clone(), paid.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(task);
                let mut mine: Vec<(World, TransactionId, i64)> = Vec::new();
                for _ in 0..10 {
                    let (agent, w) = wallets[rng.random_range(0..wallets.len())].clone();
                    let amount = rng.random_range(1..=400);
                    match rng.random_range(0..4) {
                        0 | 1 => {
                            let req = HoldRequest {
                                spend: payment(w, amount),
                                expires_in_s: None,
                            };
                            let out = agent
                                .services
                                .create_hold(&agent.agent(), req, &agent.agent_ctx())
                                .await
                                .unwrap();
                            if out.transaction.status == TransactionStatus::Held {
                                mine.push((agent, out.transaction.id, amount));
                            }
                        }
                        2 if !mine.is_empty() => {
                            let (agent, id, held) =
                                mine.swap_remove(rng.random_range(0..mine.len()));
                            if rng.random_bool(0.7) {
                                let part = rng.random_range(1..=held);
                                let out = agent.capture(id, Some(part)).await.unwrap();
                                paid.fetch_add(
                                    out.transaction.amount.minor_units(),
                                    std::sync::atomic::Ordering::Relaxed,
                                );
                            } else {
                                agent
                                    .services
                                    .void_hold(&agent.agent(), id, &agent.agent_ctx())
                                    .await
                                    .unwrap();
                            }
                        }
                        _ => {
                            let out = agent
                                .services
                                .transfer(&agent.agent(), payment(w, amount), &agent.agent_ctx())
                                .await
                                .unwrap();
                            if out.transaction.status == TransactionStatus::Completed {
                                paid.fetch_add(amount, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut total = 0;
    for (_, w) in wallets.iter() {
        let (balance, held) = balance(&db, *w).await;
        assert!(held <= balance, "{w}: held {held} above balance {balance}");
        let spent = spent_today(&db, *w).await;
        assert!(spent <= LIMIT, "{w} spent {spent} above its limit {LIMIT}");
        total += balance;
    }
    let deposited = 2_000 * i64::try_from(wallets.len()).unwrap();
    assert_eq!(
        total,
        deposited - paid.load(std::sync::atomic::Ordering::Relaxed),
        "balances are the deposits less what was paid out"
    );
    assert_reconciled(&db).await;
}

/// One step of a random sequence on one wallet.
#[derive(Debug, Clone)]
enum Op {
    Hold(i64),
    Pay(i64),
    /// A payment from the agent's other wallet (no policy of its own): it counts under the
    /// agent's and the owner's budgets only.
    PayOther(i64),
    /// Capture of the n-th open hold (modulo their number), of this much.
    Capture(usize, i64),
    Void(usize),
    /// Every sweeper runs, a week and a day later: every open hold expires.
    ExpireAll,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (1_i64..400).prop_map(Op::Hold),
        2 => (1_i64..400).prop_map(Op::Pay),
        1 => (1_i64..200).prop_map(Op::PayOther),
        3 => (0_usize..8, 1_i64..320).prop_map(|(i, a)| Op::Capture(i, a)),
        1 => (0_usize..8).prop_map(Op::Void),
        1 => Just(Op::ExpireAll),
    ]
}

/// The wallets as the rules say they must be: the first with a policy, the second without,
/// both under the agent's daily budget and the owner's monthly one.
#[derive(Debug, Default)]
struct Model {
    balance: i64,
    spent: i64,
    open: Vec<(TransactionId, i64)>,
    /// What the other wallet spent.
    spent_other: i64,
}

impl Model {
    const LIMIT: i64 = 600;
    const MAX: i64 = 300;
    const AGENT_DAILY: i64 = 700;
    const OWNER_MONTHLY: i64 = 650;

    fn held(&self) -> i64 {
        self.open.iter().map(|(_, a)| a).sum()
    }

    /// The status (and the denying level) a hold or payment of `amount` from the first
    /// wallet (`other`: from the second) must get.
    fn decide(&self, amount: i64, hold: bool, other: bool) -> (TransactionStatus, Option<Level>) {
        let total = self.spent + self.spent_other + amount;
        let denied = if !other && (amount > Self::MAX || self.spent + amount > Self::LIMIT) {
            Some(Level::Wallet)
        } else if total > Self::AGENT_DAILY {
            Some(Level::Agent)
        } else if total > Self::OWNER_MONTHLY {
            Some(Level::Owner)
        } else {
            None
        };
        let available = if other {
            1_000 - self.spent_other
        } else {
            self.balance - self.held()
        };
        match denied {
            Some(level) => (TransactionStatus::Denied, Some(level)),
            None if amount > available => (TransactionStatus::Failed, None),
            None if hold => (TransactionStatus::Held, None),
            None => (TransactionStatus::Completed, None),
        }
    }
}

async fn run_sequence(ops: Vec<Op>) {
    let db = TestDb::new().await;
    let pg = db.postgres();
    let services = services(&pg);
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 1_000).await.id;
    world
        .set_rules(
            a,
            PolicyRules {
                daily_limit: Some(money(Model::LIMIT)),
                max_per_transaction: Some(money(Model::MAX)),
                ..PolicyRules::default()
            },
        )
        .await;
    let b = world.wallet("USD", 1_000).await.id;
    let usd = |limits| -> waiaas_domain::policy::Budgets {
        [(waiaas_domain::AssetCode::parse("USD").unwrap(), limits)].into()
    };
    services
        .set_agent_budget(
            &world.owner(),
            world.agent_id,
            usd(waiaas_domain::BudgetLimits {
                daily_limit: Some(money(Model::AGENT_DAILY)),
                ..Default::default()
            }),
            &world.owner_ctx(),
        )
        .await
        .unwrap();
    services
        .set_owner_budget(
            &world.owner(),
            usd(waiaas_domain::BudgetLimits {
                monthly_limit: Some(money(Model::OWNER_MONTHLY)),
                ..Default::default()
            }),
            &world.owner_ctx(),
        )
        .await
        .unwrap();
    let mut m = Model {
        balance: 1_000,
        ..Model::default()
    };
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Hold(amount) => {
                let req = HoldRequest {
                    spend: payment(a, amount),
                    expires_in_s: None,
                };
                let out = services
                    .create_hold(&world.agent(), req, &world.agent_ctx())
                    .await
                    .unwrap();
                let (expected, level) = m.decide(amount, true, false);
                assert_eq!(out.transaction.status, expected, "step {step}: {op:?}");
                assert_eq!(out.transaction.level, level, "step {step}: {op:?}");
                if expected == TransactionStatus::Held {
                    m.open.push((out.transaction.id, amount));
                    m.spent += amount;
                }
            }
            Op::Pay(amount) => {
                let out = services
                    .transfer(&world.agent(), payment(a, amount), &world.agent_ctx())
                    .await
                    .unwrap();
                let (expected, level) = m.decide(amount, false, false);
                assert_eq!(out.transaction.status, expected, "step {step}: {op:?}");
                assert_eq!(out.transaction.level, level, "step {step}: {op:?}");
                if expected == TransactionStatus::Completed {
                    m.balance -= amount;
                    m.spent += amount;
                }
            }
            Op::PayOther(amount) => {
                let out = services
                    .transfer(&world.agent(), payment(b, amount), &world.agent_ctx())
                    .await
                    .unwrap();
                let (expected, level) = m.decide(amount, false, true);
                assert_eq!(out.transaction.status, expected, "step {step}: {op:?}");
                assert_eq!(out.transaction.level, level, "step {step}: {op:?}");
                if expected == TransactionStatus::Completed {
                    m.spent_other += amount;
                }
            }
            Op::Capture(_, _) | Op::Void(_) if m.open.is_empty() => {}
            Op::Capture(i, amount) => {
                let (id, held) = m.open[i % m.open.len()];
                let out = world.capture(id, Some(amount)).await;
                if amount > held {
                    assert!(
                        matches!(out, Err(PostingError::CaptureExceedsHold { .. })),
                        "step {step}: {op:?} gave {out:?}"
                    );
                } else {
                    assert_eq!(out.unwrap().transaction.amount, money(amount));
                    m.open.retain(|(h, _)| *h != id);
                    m.balance -= amount;
                    m.spent -= held - amount;
                }
            }
            Op::Void(i) => {
                let (id, held) = m.open.remove(i % m.open.len());
                let out = services
                    .void_hold(&world.agent(), id, &world.agent_ctx())
                    .await
                    .unwrap();
                assert_eq!(out.transaction.status, TransactionStatus::Voided);
                m.spent -= held;
            }
            Op::ExpireAll => {
                let released = ended(pg.expire_holds(Utc::now() + Duration::days(8), 1_000).await);
                assert_eq!(released.len(), m.open.len(), "step {step}");
                m.spent -= m.held();
                m.open.clear();
            }
        }
        assert_eq!(
            balance(&db, a).await,
            (m.balance, m.held()),
            "step {step}: {op:?}"
        );
        let spent = spent_today(&db, a).await;
        assert_eq!(spent, m.spent, "step {step}: {op:?}");
        assert_eq!(
            spent_today(&db, b).await,
            m.spent_other,
            "step {step}: {op:?}"
        );
        // Spent and held never exceed any level's limit, nor `held` the balance.
        let total = spent + m.spent_other;
        assert!(spent <= Model::LIMIT && total <= Model::AGENT_DAILY.min(Model::OWNER_MONTHLY));
        assert!(m.held() <= m.balance);
    }
    assert_reconciled(&db).await;
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]

    /// No sequence of holds, captures, voids, expiries and payments (from two wallets of one
    /// agent) lets what was spent and held exceed a limit at any level (the wallet's daily
    /// limit and maximum, the agent's daily budget, the owner's monthly budget), or `held`
    /// exceed the balance; the database agrees with the model after every step, down to the
    /// level a denial names.
    #[test]
    fn random_sequences_of_holds_and_payments_agree_with_the_model(
        ops in proptest::collection::vec(op(), 1..30)
    ) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(run_sequence(ops));
    }
}

/// Two attempts of one capture (a client that retried) wait on the same locked wallet; the
/// one that goes second must answer with the first one's capture, not "already captured",
/// although its locking statement's snapshot predates that commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_capture_retried_while_the_first_attempt_waits_for_the_lock_replays_it() {
    let db = TestDb::with_pool(8).await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 1_000).await.id;
    let b = world.wallet("USD", 0).await.id;
    let hold = world.hold(a, b, 300).await.transaction.id;

    let blocker = crate::lock_wallet(&db.db, a).await;
    let attempt = || {
        let world = world.clone();
        tokio::spawn(async move {
            world
                .services
                .capture_hold(
                    &world.agent(),
                    waiaas_domain::services::CaptureRequest {
                        hold_id: hold,
                        amount: Some(100),
                        idempotency_key: Some("capture-once".to_owned()),
                    },
                    &world.agent_ctx(),
                )
                .await
        })
    };
    let (first, second) = (attempt(), attempt());
    // Both are waiting for the wallet when the lock goes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    blocker.rollback().await.unwrap();
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    let (first, second) = (
        first.expect("first"),
        second.expect("a replay, not a refusal"),
    );
    assert_eq!(first.transaction.id, second.transaction.id);
    assert!(
        first.replayed != second.replayed,
        "one posted, one replayed"
    );
    assert_eq!(balance(&db, a).await, (900, 0));
    assert_reconciled(&db).await;
}

/// A retry that waited for the lock behind its first attempt, and met a hold that expired
/// meanwhile, releases it in its own transaction before it finds the first attempt's row and
/// rolls back. Its answer must be the wallet as committed, not as its rolled-back release
/// left it: a balance at a version PostgreSQL never had would be written through to caches.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_that_released_an_expired_hold_reports_the_committed_balance() {
    let db = TestDb::with_pool(8).await;
    let pg = db.postgres();
    let services = services(&pg);
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 1_000).await.id;
    let b = world.wallet("USD", 0).await.id;
    services
        .create_hold(
            &world.agent(),
            HoldRequest {
                spend: World::transfer_request(a, b, 100),
                expires_in_s: Some(1),
            },
            &world.agent_ctx(),
        )
        .await
        .unwrap();

    let blocker = crate::lock_wallet(&db.db, a).await;
    let req = TransferRequest {
        idempotency_key: Some("pay-once".to_owned()),
        ..World::transfer_request(a, b, 10)
    };
    let attempt = || {
        let (world, req) = (world.clone(), req.clone());
        tokio::spawn(async move {
            world
                .services
                .transfer(&world.agent(), req, &world.agent_ctx())
                .await
        })
    };
    // The first attempt asks before the hold expires, the retry after; both wait.
    let first = attempt();
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let retry = attempt();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    blocker.rollback().await.unwrap();
    let first = first.await.unwrap().unwrap();
    let retry = retry.await.unwrap().unwrap();
    assert!(!first.replayed && retry.replayed);
    let committed = pg.balance(a).await.unwrap().unwrap();
    let told = retry
        .balances
        .iter()
        .find(|x| x.wallet_id == a)
        .expect("the replay reports the paying wallet");
    assert_eq!(told, &committed, "the replay reports what PostgreSQL holds");
    assert_eq!(
        committed.held.minor_units(),
        100,
        "only the sweeper or a posting releases it"
    );
}

/// A sweep that meets a wallet locked past the lock timeout skips it and still reports the
/// releases it committed (in any order of the due wallets), so their balances are written
/// through and their events published; the locked wallet's hold is released by a later run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sweep_that_meets_a_locked_wallet_reports_what_it_released_and_skips_it() {
    let db = TestDb::with_pool(8).await;
    let pg = db.postgres();
    let services = services(&pg);
    let world = Fixture::world(&services).await;
    let (a, b, to) = (
        world.wallet("USD", 1_000).await.id,
        world.wallet("USD", 1_000).await.id,
        world.wallet("USD", 0).await.id,
    );
    let held_a = world.hold(a, to, 100).await.transaction.id;
    let held_b = world.hold(b, to, 200).await.transaction.id;
    let later = Utc::now() + Duration::hours(2);

    let blocker = crate::lock_wallet(&db.db, b).await;
    let swept = pg.expire_holds(later, 100).await;
    blocker.rollback().await.unwrap();
    let failed = swept.failed.expect("the locked wallet is reported");
    assert_eq!(
        waiaas_domain::Fault::of(&failed.0),
        Some(waiaas_domain::Fault::WalletBusy),
        "{failed:#}"
    );
    let ids: Vec<_> = swept.outcomes.iter().map(|o| o.transaction.id).collect();
    assert_eq!(
        ids,
        vec![held_a],
        "the release committed before or after the failure"
    );
    let out = &swept.outcomes[0];
    assert_eq!(out.transaction.status, TransactionStatus::Expired);
    assert_eq!(
        out.balances,
        vec![pg.balance(a).await.unwrap().unwrap()],
        "it carries the committed balance, to be written through"
    );
    assert!(
        out.notified.is_some(),
        "and the owner's notifications version"
    );
    assert_eq!(balance(&db, a).await, (1_000, 0));
    assert_eq!(
        balance(&db, b).await,
        (1_000, 200),
        "the locked wallet waits"
    );

    let next = ended(pg.expire_holds(later, 100).await);
    assert_eq!(
        next.iter().map(|o| o.transaction.id).collect::<Vec<_>>(),
        vec![held_b]
    );
    assert_eq!(balance(&db, b).await, (1_000, 0));
    assert_reconciled(&db).await;
}
