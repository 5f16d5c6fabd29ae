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

#[tokio::test]
async fn every_migration_goes_down_and_up_again_with_data_in_the_database() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 500).await.id;
    let b = world.wallet("USD", 0).await.id;
    world.spend(a, b, 20).await;
    let all = tables(&db).await;
    assert!(all.len() >= 12, "{all:?}");

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
    assert_eq!(w.balance.minor_units(), 0);
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
