//! Every migration goes down and up again on a database holding data.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use waiaas_migration::{Migrator, MigratorTrait as _};
use waiaas_testkit::{Fixture, TestDb, services};

async fn tables(db: &TestDb) -> Vec<String> {
    let rows = db
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'seaql_migrations' ORDER BY tablename",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get("", "tablename").unwrap())
        .collect()
}

async fn rows(db: &TestDb, sql: &str) -> Vec<String> {
    db.db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("", "v").unwrap())
        .collect()
}

/// What the data of a database says, in a form two states can be compared in. Holds are
/// left out: their migration's `down` removes them (and bumps the version of a wallet whose
/// `held` it zeroes); what it leaves is checked on its own.
async fn snapshot(db: &TestDb) -> Vec<Vec<String>> {
    vec![
        rows(db, "SELECT id::text || ' ' || balance AS v FROM wallets ORDER BY id").await,
        rows(db, "SELECT id::text || ' ' || kind || ' ' || status || ' ' || amount || ' ' || coalesce(decision, '-') AS v FROM transactions WHERE kind <> 'hold' ORDER BY id").await,
        rows(db, "SELECT transaction_id::text || ' ' || account || ' ' || amount AS v FROM ledger_entries ORDER BY id").await,
        rows(db, "SELECT action AS v FROM audit_logs ORDER BY id").await,
    ]
}

#[tokio::test]
async fn every_migration_goes_down_and_up_again_with_data_in_the_database() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 500).await.id;
    let b = world.wallet("USD", 0).await.id;
    world.spend(a, b, 20).await;
    // A payment to the destination `deposits`, and a transfer held then approved.
    let mut to_deposits = waiaas_testkit::World::transfer_request(a, a, 5);
    to_deposits.to_wallet_id = None;
    to_deposits.destination = Some("deposits".to_owned());
    services
        .transfer(&world.agent(), to_deposits, &world.agent_ctx())
        .await
        .unwrap();
    world
        .set_rules(
            a,
            waiaas_domain::PolicyRules {
                approval_above: Some(waiaas_domain::Money::new(50).unwrap()),
                ..Default::default()
            },
        )
        .await;
    let held = world.spend(a, b, 60).await;
    services
        .decide(
            &world.owner(),
            held.transaction.id,
            true,
            &world.owner_ctx(),
        )
        .await
        .unwrap();
    // A key that expires in an hour: taking its column away must not make it permanent.
    let (expiring, _, _) = services
        .create_expiring_agent_key(
            world.owner_id,
            world.agent_id,
            Some(std::time::Duration::from_secs(3600)),
            &world.owner_ctx(),
        )
        .await
        .unwrap();
    // Holds: one captured in part, one voided, one still open (its 30 count in the day's
    // spend until `down` gives them back).
    let hold = |amount: i64| waiaas_domain::services::HoldRequest {
        spend: waiaas_testkit::World::transfer_request(a, b, amount),
        expires_in_s: None,
    };
    let captured = services
        .create_hold(&world.agent(), hold(10), &world.agent_ctx())
        .await
        .unwrap();
    services
        .capture_hold(
            &world.agent(),
            waiaas_domain::services::CaptureRequest {
                hold_id: captured.transaction.id,
                amount: Some(7),
                idempotency_key: Some("capture-1".to_owned()),
            },
            &world.agent_ctx(),
        )
        .await
        .unwrap();
    let voided = services
        .create_hold(&world.agent(), hold(11), &world.agent_ctx())
        .await
        .unwrap();
    services
        .void_hold(&world.owner(), voided.transaction.id, &world.owner_ctx())
        .await
        .unwrap();
    services
        .create_hold(&world.agent(), hold(30), &world.agent_ctx())
        .await
        .unwrap();
    let budget: waiaas_domain::policy::Budgets = [(
        waiaas_domain::AssetCode::parse("USD").unwrap(),
        waiaas_domain::BudgetLimits {
            daily_limit: Some(waiaas_domain::Money::new(10_000).unwrap()),
            ..Default::default()
        },
    )]
    .into();
    services
        .set_agent_budget(
            &world.owner(),
            world.agent_id,
            budget.clone(),
            &world.owner_ctx(),
        )
        .await
        .unwrap();
    services
        .set_owner_budget(&world.owner(), budget, &world.owner_ctx())
        .await
        .unwrap();
    services
        .create_mandate(
            &world.owner(),
            waiaas_domain::services::MandateRequest {
                wallet_id: a,
                max_amount: 5,
                total_amount: None,
                max_uses: None,
                to_wallet_id: None,
                destination: None,
                expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
            },
            &world.owner_ctx(),
        )
        .await
        .unwrap();
    let spend_sql =
        format!("SELECT amount::text AS v FROM wallet_daily_spend WHERE wallet_id = '{a}'");
    let spent: i64 = rows(&db, &spend_sql).await[0].parse().unwrap();
    assert_eq!(
        rows(
            &db,
            &format!("SELECT held::text AS v FROM wallets WHERE id = '{a}'")
        )
        .await,
        vec!["30".to_owned()]
    );
    let before = snapshot(&db).await;
    assert!(
        before[2]
            .iter()
            .any(|e| e.contains(" system:deposits -500")),
        "{:?}",
        before[2]
    );
    assert!(before[2].iter().any(|e| e.contains(" external:deposits 5")));
    assert!(before[1].iter().any(|t| t.ends_with(" approved")));
    let all = tables(&db).await;
    assert!(all.len() >= 12, "{all:?}");

    // The newest migrations go down and up again (one step, then two: back through the
    // hardening migration), and the data is what it was: the platform's account still apart
    // from the destination `deposits`, the owner's decision restored from the audit trail.
    assert_ne!(
        rows(&db, "SELECT count(*)::text AS v FROM events").await,
        vec!["0".to_owned()],
        "every change wrote its event"
    );
    let events_before = rows(
        &db,
        "SELECT count(*)::text AS v FROM events WHERE subject = 'transaction'",
    )
    .await;
    let all_events_before = rows(&db, "SELECT count(*)::text AS v FROM events").await;
    assert_ne!(
        rows(
            &db,
            "SELECT count(*)::text AS v FROM events WHERE subject <> 'transaction'"
        )
        .await,
        vec!["0".to_owned()],
        "agents, keys, policies, budgets and mandates wrote theirs"
    );
    for steps in 1..=13 {
        Migrator::down(&db.db, Some(steps))
            .await
            .unwrap_or_else(|e| panic!("down {steps} steps: {e}"));
        Migrator::up(&db.db, None)
            .await
            .unwrap_or_else(|e| panic!("up after {steps} steps down: {e}"));
        assert_eq!(
            snapshot(&db).await,
            before,
            "after {steps} steps down and up"
        );
        // The chain's seals of many rows, row-level security, the hash chain and the
        // append-only triggers are the newest four migrations (they drop nothing but
        // themselves); then sessions' keys; then the events of records other than
        // transactions (going down deletes them), then webhooks; the outbox, mandates and
        // budgets (the ones before) cannot outlive their tables; eleven steps down reach the
        // holds, twelve the key expiry.
        let older = steps.saturating_sub(4);
        let events = match older {
            0 | 1 => all_events_before.clone(),
            2 | 3 => events_before.clone(),
            _ => vec!["0".to_owned()],
        };
        assert_eq!(
            rows(&db, "SELECT count(*)::text AS v FROM events").await,
            events,
            "the events went with their table"
        );
        let mandates = if older >= 5 { "0" } else { "1" };
        assert_eq!(
            rows(&db, "SELECT count(*)::text AS v FROM mandates").await,
            vec![mandates.to_owned()]
        );
        let budgets = if older >= 6 { "0" } else { "2" };
        assert_eq!(
            rows(
                &db,
                "SELECT ((SELECT count(*) FROM agent_budgets) + (SELECT count(*) FROM owner_budgets))::text AS v"
            )
            .await,
            vec![budgets.to_owned()]
        );
        let (spend, holds) = if older >= 7 {
            (spent - 30, "0")
        } else {
            (spent, "3")
        };
        assert_eq!(
            rows(&db, &spend_sql).await,
            vec![spend.to_string()],
            "the open hold's amount went back to the day's spend"
        );
        assert_eq!(
            rows(
                &db,
                "SELECT count(*)::text AS v FROM transactions WHERE kind = 'hold'"
            )
            .await,
            vec![holds.to_owned()]
        );
        let revoked = if older >= 8 { "true" } else { "false" };
        assert_eq!(
            rows(
                &db,
                &format!(
                    "SELECT (revoked_at IS NOT NULL)::text AS v FROM api_keys WHERE id = '{expiring}'"
                )
            )
            .await,
            vec![revoked.to_owned()],
            "the expiring key was revoked when its expiry could not be kept"
        );
        assert!(
            waiaas_postgres::reconcile(&db.db)
                .await
                .unwrap()
                .is_consistent()
        );
    }

    let steps = Migrator::migrations().len();
    for step in 1..=steps {
        Migrator::down(&db.db, Some(1))
            .await
            .unwrap_or_else(|e| panic!("down step {step}: {e}"));
    }
    assert!(tables(&db).await.is_empty(), "down removes every table");
    Migrator::up(&db.db, None).await.expect("up again");
    assert_eq!(tables(&db).await, all);

    // The schema works again from scratch.
    let services = services_again(&db);
    let world = Fixture::world(&services).await;
    let w = world.wallet("USD", 5).await;
    assert_eq!(
        services
            .balance(&world.owner(), w.id)
            .await
            .unwrap()
            .balance
            .minor_units(),
        5
    );
    assert!(
        waiaas_postgres::reconcile(&db.db)
            .await
            .unwrap()
            .is_consistent()
    );
}

fn services_again(db: &TestDb) -> waiaas_domain::Services {
    services(&db.postgres())
}
