//! Budgets at three levels against a real PostgreSQL: a denial names its level and what is
//! left at each; and three agents of one owner spending at once, across each other's
//! wallets, never exceed the wallet's, the agent's or the owner's limit, and never deadlock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use waiaas_domain::model::TransactionStatus;
use waiaas_domain::policy::Budgets;
use waiaas_domain::services::{HoldRequest, TransferRequest};
use waiaas_domain::{AssetCode, BudgetLimits, Level, Money, PolicyRules, Rule};
use waiaas_testkit::{Fixture, TestDb, World, services};

fn money(v: i64) -> Money {
    Money::new(v).unwrap()
}

fn usd(limits: BudgetLimits) -> Budgets {
    [(AssetCode::parse("USD").unwrap(), limits)].into()
}

fn payment(from: waiaas_domain::WalletId, amount: i64) -> TransferRequest {
    TransferRequest {
        to_wallet_id: None,
        destination: Some("merchant-7".into()),
        ..World::transfer_request(from, from, amount)
    }
}

async fn sum(db: &TestDb, sql: &str, id: uuid::Uuid) -> i64 {
    db.db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [id.into(), Utc::now().date_naive().into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<Option<i64>>("", "n")
        .unwrap()
        .unwrap_or(0)
}

const AGENT_TODAY: &str = "SELECT sum(s.amount)::bigint AS n FROM wallet_daily_spend s JOIN wallets w ON w.id = s.wallet_id WHERE w.agent_id = $1 AND s.day = $2";
const OWNER_TODAY: &str = "SELECT sum(s.amount)::bigint AS n FROM wallet_daily_spend s JOIN wallets w ON w.id = s.wallet_id WHERE w.owner_id = $1 AND s.day = $2";

#[tokio::test]
async fn a_denial_names_its_level_and_what_is_left_at_each() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 1_000).await.id;
    let b = world.wallet("USD", 1_000).await.id;
    world
        .set_rules(
            a,
            PolicyRules {
                monthly_limit: Some(money(500)),
                ..PolicyRules::default()
            },
        )
        .await;
    services
        .set_agent_budget(
            &world.owner(),
            world.agent_id,
            usd(BudgetLimits {
                daily_limit: Some(money(100)),
                ..BudgetLimits::default()
            }),
            &world.owner_ctx(),
        )
        .await
        .unwrap();
    services
        .set_owner_budget(
            &world.owner(),
            usd(BudgetLimits {
                max_per_transaction: Some(money(30)),
                monthly_limit: Some(money(1_000)),
                ..BudgetLimits::default()
            }),
            &world.owner_ctx(),
        )
        .await
        .unwrap();

    let ok = world.spend(a, b, 30).await.transaction;
    assert_eq!(ok.status, TransactionStatus::Completed, "{:?}", ok.reason);
    assert_eq!(ok.budget.monthly_remaining, Some(money(470)));
    assert_eq!(ok.budget.agent.unwrap().daily_remaining, Some(money(70)));
    assert_eq!(ok.budget.owner.unwrap().monthly_remaining, Some(money(970)));
    // The owner's per-transaction maximum: the agent's budget allows 31, the owner's not.
    let d = world.spend(a, b, 31).await.transaction;
    assert_eq!(
        (d.status, d.level, d.rule),
        (
            TransactionStatus::Denied,
            Some(Level::Owner),
            Some(Rule::MaxPerTransaction)
        )
    );
    // The agent's daily limit counts every wallet of the agent: b spends too.
    world.spend(b, a, 30).await;
    world.spend(a, b, 30).await;
    let d = world.spend(b, a, 11).await.transaction;
    assert_eq!(
        (d.status, d.level, d.rule),
        (
            TransactionStatus::Denied,
            Some(Level::Agent),
            Some(Rule::DailyLimit)
        )
    );
    assert_eq!(d.budget.agent.unwrap().daily_remaining, Some(money(10)));
    assert!(d.reason.unwrap().contains("agent's daily limit"));
    // A hold counts at every level too.
    let h = services
        .create_hold(
            &world.agent(),
            HoldRequest {
                spend: payment(b, 11),
                expires_in_s: None,
            },
            &world.agent_ctx(),
        )
        .await
        .unwrap()
        .transaction;
    assert_eq!(h.level, Some(Level::Agent));
    // The budgets are read back as set, and an agent may read its own.
    let read = services
        .agent_budget(&world.agent(), world.agent_id)
        .await
        .unwrap();
    assert_eq!(
        read[&AssetCode::parse("USD").unwrap()].daily_limit,
        Some(money(100))
    );
}

/// Three agents of one owner, two wallets each, budgets at all three levels. 200 holds,
/// captures, payments and transfers at once, a quarter of the transfers to another agent's
/// wallet (so postings lock wallets of two agents and the budget rows of one). Afterwards no
/// wallet, agent or owner spent more than its daily limit, nothing failed (a deadlock would
/// be an error), reconcile passes and the balances are the deposits less what was paid out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_agents_spending_at_once_keep_every_level_within_budget() {
    three_agents_spending_at_once(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_agents_spending_at_once_in_batches_keep_every_level_within_budget() {
    three_agents_spending_at_once(64).await;
}

async fn three_agents_spending_at_once(max_batch: usize) {
    const WALLET: i64 = 900;
    const AGENT: i64 = 1_400;
    const OWNER: i64 = 3_000;
    let db = TestDb::with_pool(16).await;
    let services = services(&db.postgres_batched(4, max_batch));
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
    services
        .set_owner_budget(
            &first.owner(),
            usd(BudgetLimits {
                daily_limit: Some(money(OWNER)),
                ..BudgetLimits::default()
            }),
            &first.owner_ctx(),
        )
        .await
        .unwrap();
    let mut wallets = Vec::new();
    for agent in &agents {
        services
            .set_agent_budget(
                &first.owner(),
                agent.agent_id,
                usd(BudgetLimits {
                    daily_limit: Some(money(AGENT)),
                    ..BudgetLimits::default()
                }),
                &first.owner_ctx(),
            )
            .await
            .unwrap();
        for _ in 0..2 {
            let w = agent.wallet("USD", 2_000).await.id;
            agent
                .set_rules(
                    w,
                    PolicyRules {
                        daily_limit: Some(money(WALLET)),
                        ..PolicyRules::default()
                    },
                )
                .await;
            wallets.push((agent.clone(), w));
        }
    }
    let wallets = Arc::new(wallets);
    let paid = Arc::new(AtomicI64::new(0));
    let tasks: Vec<_> = (0..20_u64)
        .map(|task| {
            let (wallets, paid) = (wallets.clone(), paid.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(task);
                let mut held = Vec::new();
                for _ in 0..10 {
                    let (agent, w) = wallets[rng.random_range(0..wallets.len())].clone();
                    let amount = rng.random_range(1..=250);
                    let (s, p, c) = (&agent.services, agent.agent(), agent.agent_ctx());
                    match rng.random_range(0..4) {
                        0 => {
                            let req = HoldRequest {
                                spend: payment(w, amount),
                                expires_in_s: None,
                            };
                            let out = s.create_hold(&p, req, &c).await.unwrap();
                            if out.transaction.status == TransactionStatus::Held {
                                held.push((agent.clone(), out.transaction.id, amount));
                            }
                        }
                        1 if !held.is_empty() => {
                            let (agent, id, amount) = held.swap_remove(0);
                            let part = rng.random_range(1..=amount);
                            let out = agent.capture(id, Some(part)).await.unwrap();
                            paid.fetch_add(out.transaction.amount.minor_units(), Ordering::Relaxed);
                        }
                        2 => {
                            // Any wallet of the owner, often another agent's.
                            let (_, to) = wallets[rng.random_range(0..wallets.len())].clone();
                            if to != w {
                                s.transfer(&p, World::transfer_request(w, to, amount), &c)
                                    .await
                                    .unwrap();
                            }
                        }
                        _ => {
                            let out = s.transfer(&p, payment(w, amount), &c).await.unwrap();
                            if out.transaction.status == TransactionStatus::Completed {
                                paid.fetch_add(amount, Ordering::Relaxed);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await
            .expect("no task failed (a deadlock would be an error)");
    }
    let today = "SELECT amount AS n FROM wallet_daily_spend WHERE wallet_id = $1 AND day = $2";
    let mut total = 0;
    for (_, w) in wallets.iter() {
        let spent = sum(&db, today, *w.as_uuid()).await;
        assert!(spent <= WALLET, "wallet {w} spent {spent}");
        total += waiaas_domain::ports::WalletRepository::balance(&db.postgres(), *w)
            .await
            .unwrap()
            .unwrap()
            .balance
            .minor_units();
    }
    for agent in &agents {
        let spent = sum(&db, AGENT_TODAY, *agent.agent_id.as_uuid()).await;
        assert!(spent <= AGENT, "agent {} spent {spent}", agent.agent_id);
    }
    let spent = sum(&db, OWNER_TODAY, *first.owner_id.as_uuid()).await;
    assert!(spent <= OWNER, "the owner spent {spent}");
    assert!(
        spent > OWNER / 2,
        "the budgets were actually reached for: {spent}"
    );
    assert_eq!(
        total,
        2_000 * i64::try_from(wallets.len()).unwrap() - paid.load(Ordering::Relaxed)
    );
    let report = waiaas_postgres::reconcile(&db.db).await.unwrap();
    assert!(report.is_consistent(), "{report}");
}
