//! Least privilege: a schema owned by a migration role, `waiaas db roles` granting an
//! application role what serving needs, and the service running as that role: it serves,
//! seals the ledger and deletes old events, and cannot alter the schema, rewrite a ledger
//! entry, delete an audit row, or see a tenant's rows without naming the tenant.

use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::json;
use waiaas_app::database::MigrateAction;
use waiaas_tests::{Options, TestApp};

fn as_user(admin: &str, user: &str, db: &str) -> String {
    waiaas_testkit::with_database(&waiaas_testkit::with_user(admin, user), db)
}

async fn refused(db: &DatabaseConnection, sql: &str) -> String {
    db.execute_unprepared(sql)
        .await
        .err()
        .unwrap_or_else(|| panic!("`{sql}` was allowed"))
        .to_string()
}

#[tokio::test]
async fn the_service_runs_as_an_application_role_that_cannot_rewrite_history_or_the_schema() {
    let admin_url = waiaas_testkit::admin_url()
        .await
        .expect("test database server");
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let (owner, app_role, name) = (
        format!("waiaas_t_owner_{tag}"),
        format!("waiaas_t_app_{tag}"),
        format!("waiaas_t_roles_{tag}"),
    );
    let admin = Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE ROLE {owner} LOGIN CREATEROLE"))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name} OWNER {owner}"))
        .await
        .unwrap();

    let app_url = as_user(&admin_url, &app_role, &name);
    let owner_url = as_user(&admin_url, &owner, &name);
    let mut settings = TestApp::settings_for(&app_url, &Options::default());
    settings.database.migration_url = Some(owner_url.clone());
    settings.database.app_role = app_role.clone();
    settings.database.row_level_security = true;
    settings.events.retention_days = 1;
    waiaas_app::commands::migrate(&settings, MigrateAction::Up)
        .await
        .expect("migrations as the owner");
    waiaas_app::roles::roles(&settings, false, Some("app-secret"))
        .await
        .expect("db roles");
    // Running it again changes nothing and fails on nothing.
    waiaas_app::roles::roles(&settings, false, None)
        .await
        .expect("db roles again");

    // The service, as the application role: owners, agents, wallets, deposits, transfers.
    let app = TestApp::spawn_with(settings.clone()).await;
    let (_, owner_key) = app.owner("least privilege").await;
    let (agent, agent_key) = app.agent(&owner_key, "a").await;
    let a = app.wallet(&owner_key, &agent, "USD", 100).await;
    let b = app.wallet(&owner_key, &agent, "USD", 0).await;
    for i in 0..3 {
        let r = app
            .transfer(&agent_key, &a, &b, 10, &format!("k-{i}"))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let balance = app
        .get(&format!("/v1/wallets/{a}/balance"), &agent_key)
        .await;
    assert_eq!(balance.body["balance"], json!(70), "{:?}", balance.body);
    // Its sealer extends the chain.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let head = app.get("/v1/ledger/head", &owner_key).await;
        assert_eq!(head.status, StatusCode::OK, "{:?}", head.body);
        if head.body["position"].as_i64().unwrap_or(0) >= 10 {
            assert_eq!(head.str("hash").len(), 64, "{:?}", head.body);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sealer never sealed: {:?}",
            head.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let forbidden = app.get("/v1/ledger/head", &agent_key).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    // Its retention job may delete old events (through the owner's function only).
    let deleted = waiaas_app::retention::run_once(
        &waiaas_postgres::Postgres::new(app.app.db.clone()),
        app.app.locks.as_ref(),
        0,
        100,
    )
    .await
    .expect("retention as the application role");
    assert!(deleted.is_some());
    // The whole walkthrough, every request acting for its owner under row-level security.
    crate::walkthrough::walk(&app, &settings).await;
    app.stop().await;

    // Behind a transaction pooler the tenant a connection names would reach other clients:
    // the service refuses to start as a role under row-level security there.
    let bouncer = waiaas_testkit::PgBouncer::start(&app_url, 2)
        .await
        .expect("pgbouncer");
    let mut pooled = settings.clone();
    pooled.database.url = bouncer.url(&app_url);
    pooled.database.migration_url = None;
    pooled.database.auto_migrate = false;
    pooled.database.pooler = waiaas_postgres::Pooler::PgbouncerTransaction;
    let Err(refused_start) = waiaas_app::build(&pooled).await else {
        panic!("a role under row-level security is refused behind a transaction pooler");
    };
    assert!(
        format!("{refused_start:#}").contains("row-level security"),
        "{refused_start:#}"
    );

    // What the application role cannot do.
    let as_app = Database::connect(&app_url).await.unwrap();
    let as_owner = Database::connect(&owner_url).await.unwrap();
    // See another tenant's rows: a connection of the application role that names no tenant
    // sees none at all (the service names one on every connection it takes, which is how
    // everything above worked).
    for table in ["wallets", "transactions", "audit_logs", "agents"] {
        let sql = format!("SELECT count(*)::text AS v FROM {table}");
        assert_eq!(waiaas_testkit::text_of(&as_app, &sql).await, "0", "{table}");
        assert_ne!(
            waiaas_testkit::text_of(&as_owner, &sql).await,
            "0",
            "{table}"
        );
    }
    for (sql, why) in [
        ("ALTER TABLE wallets ADD COLUMN x INTEGER", "must be owner"),
        ("CREATE TABLE t (x INTEGER)", "permission denied"),
        ("DROP TABLE audit_logs", "must be owner"),
        (
            "UPDATE ledger_entries SET amount = amount",
            "permission denied",
        ),
        ("DELETE FROM ledger_entries", "permission denied"),
        ("DELETE FROM audit_logs", "permission denied"),
        ("TRUNCATE audit_logs", "permission denied"),
        (
            "UPDATE events SET type = 'transaction.forged'",
            "permission denied",
        ),
        ("DELETE FROM events", "permission denied"),
        ("UPDATE ledger_chain SET hash = hash", "permission denied"),
        ("DELETE FROM seaql_migrations", "permission denied"),
        (
            "ALTER TABLE ledger_entries DISABLE TRIGGER ALL",
            "must be owner",
        ),
    ] {
        let e = refused(&as_app, sql).await;
        assert!(e.contains(why), "{sql}: {e}");
    }
    // Turned off, the application role sees the rows without naming a tenant.
    settings.database.row_level_security = false;
    waiaas_app::roles::roles(&settings, false, None)
        .await
        .expect("db roles without row-level security");
    assert_ne!(
        waiaas_testkit::text_of(&as_app, "SELECT count(*)::text AS v FROM wallets").await,
        "0"
    );
    as_app.close().await.unwrap();
    // And the schema's owner is refused a rewrite by the append-only triggers.
    for sql in [
        "UPDATE ledger_entries SET amount = amount",
        "DELETE FROM audit_logs",
    ] {
        let e = refused(&as_owner, sql).await;
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    as_owner.close().await.unwrap();
    let report =
        waiaas_postgres::chain::verify(&Database::connect(&owner_url).await.unwrap(), None)
            .await
            .unwrap();
    assert!(report.is_intact(), "{report}");

    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
    for role in [&app_role, &owner] {
        admin
            .execute_unprepared(&format!("DROP ROLE {role}"))
            .await
            .unwrap();
    }
}
