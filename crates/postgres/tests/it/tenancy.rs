//! Row-level security (migration 17): a role subject to it sees and writes only the rows of
//! the tenant its connection names (`waiaas.tenant`), and the adapter names, on every
//! connection it takes, the tenant the task acts for (`waiaas_domain::tenant`).

use sea_orm::{ConnectionTrait as _, Database, DatabaseConnection, DbBackend, Statement};
use waiaas_domain::ports::{AuditLog as _, TransactionRepository as _};
use waiaas_domain::tenant::{self, Tenant};
use waiaas_domain::{AuditQuery, OwnerId, TransactionId};
use waiaas_postgres::Postgres;
use waiaas_testkit::{Fixture, TestDb, World, services};

/// A login role like the service's application role (no superuser, not the tables' owner),
/// with every privilege on the data, and row-level security turned on (as `waiaas db roles`
/// does with `database.row_level_security`), so that only the policies stand in the way.
struct AppRole {
    name: String,
    url: String,
    admin: DatabaseConnection,
}

impl AppRole {
    async fn create(db: &TestDb) -> Self {
        let name = format!(
            "waiaas_rls_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        db.db
            .execute_unprepared(&format!(
                "CREATE ROLE {name} LOGIN; GRANT USAGE ON SCHEMA public TO {name}; \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}; \
                 GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {name}"
            ))
            .await
            .unwrap();
        for table in waiaas_migration::TENANT_TABLES {
            db.db
                .execute_unprepared(&format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
                .await
                .unwrap();
        }
        Self {
            url: waiaas_testkit::with_user(&db.url, &name),
            name,
            admin: db.db.clone(),
        }
    }

    async fn drop(self) {
        self.admin
            .execute_unprepared(&format!("DROP OWNED BY {0}; DROP ROLE {0}", self.name))
            .await
            .unwrap();
    }
}

async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    db.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT count(*) AS n FROM {table}"),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get("", "n")
    .unwrap()
}

async fn set_tenant(db: &DatabaseConnection, value: &str) {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT set_config('waiaas.tenant', $1, false)",
        [value.into()],
    ))
    .await
    .unwrap();
}

const TENANT_TABLES: [&str; 5] = ["wallets", "transactions", "audit_logs", "agents", "events"];

/// Two owners, each with an agent, two wallets and a transfer between them (the second
/// owner's transfer returned).
async fn two_owners(db: &TestDb) -> (World, World, TransactionId) {
    let services = services(&db.postgres());
    let mut worlds = Vec::new();
    let mut last = None;
    for _ in 0..2 {
        let world = Fixture::world(&services).await;
        let a = world.wallet("USD", 100).await.id;
        let b = world.wallet("USD", 0).await.id;
        last = Some(world.spend(a, b, 40).await.transaction.id);
        worlds.push(world);
    }
    let second = worlds.pop().unwrap();
    (worlds.pop().unwrap(), second, last.unwrap())
}

#[tokio::test]
async fn a_connection_that_names_no_tenant_sees_nothing_and_one_that_names_an_owner_sees_its_rows_only()
 {
    let db = TestDb::new().await;
    let (first, _second, _) = two_owners(&db).await;
    let role = AppRole::create(&db).await;
    // A single connection, without the adapter: nothing names a tenant on it.
    let mut opts = sea_orm::ConnectOptions::new(role.url.clone());
    opts.max_connections(1);
    let plain = Database::connect(opts).await.unwrap();
    for table in TENANT_TABLES {
        assert_eq!(count(&plain, table).await, 0, "{table} without a tenant");
        assert!(count(&db.db, table).await > 0, "{table} holds rows");
    }
    set_tenant(&plain, &first.owner_id.to_string()).await;
    for table in ["wallets", "transactions", "agents"] {
        let own = count(&plain, table).await;
        let all = count(&db.db, table).await;
        assert!(
            own > 0 && own < all,
            "{table}: {own} of {all} rows for the first owner"
        );
    }
    // An owner that does not exist sees nothing; the system sees everything.
    set_tenant(&plain, &OwnerId::new().to_string()).await;
    assert_eq!(count(&plain, "wallets").await, 0);
    set_tenant(&plain, "system").await;
    for table in TENANT_TABLES {
        assert_eq!(
            count(&plain, table).await,
            count(&db.db, table).await,
            "{table} for the system"
        );
    }
    plain.close().await.unwrap();
    role.drop().await;
}

#[tokio::test]
async fn the_adapter_acting_for_one_owner_neither_reads_nor_writes_another_owners_rows() {
    let db = TestDb::new().await;
    let (first, second, theirs) = two_owners(&db).await;
    let role = AppRole::create(&db).await;
    let pool = waiaas_postgres::connect(&waiaas_postgres::PgSettings {
        url: role.url.clone(),
        min_connections: 0,
        max_connections: 2,
        ..waiaas_postgres::PgSettings::default()
    })
    .await
    .unwrap();
    let pg = Postgres::new(pool.clone());
    let trail = |owner_id| AuditQuery {
        owner_id,
        resource_type: None,
        resource_id: None,
        limit: 100,
        before: None,
    };
    // A port asked, by mistake, for the second owner's rows while serving the first: the
    // database answers as if they did not exist.
    let (leaked, transaction) = tenant::scope(Tenant::Owner(first.owner_id), async {
        (
            pg.list(&trail(second.owner_id)).await.unwrap(),
            pg.get(theirs).await.unwrap(),
        )
    })
    .await;
    assert!(leaked.is_empty(), "another owner's audit trail: {leaked:?}");
    assert!(transaction.is_none(), "another owner's transaction");
    // The same questions for the owner itself, and for the system, are answered.
    let own = tenant::scope(
        Tenant::Owner(second.owner_id),
        pg.list(&trail(second.owner_id)),
    )
    .await
    .unwrap();
    assert!(!own.is_empty());
    assert!(
        pg.get(theirs).await.unwrap().is_some(),
        "the system sees it"
    );
    // The service works for an owner through the same pool: a transfer, then its history.
    let services = services(&pg);
    let world = World {
        services: services.clone(),
        ..first
    };
    let (from, to) = tenant::scope(Tenant::Owner(world.owner_id), async {
        let from = world.wallet("USD", 50).await.id;
        let to = world.wallet("USD", 0).await.id;
        world.spend(from, to, 20).await;
        (from, to)
    })
    .await;
    let balance = tenant::scope(
        Tenant::Owner(world.owner_id),
        services.balance(&world.agent(), to),
    )
    .await
    .unwrap();
    assert_eq!(balance.balance.minor_units(), 20, "{from} -> {to}");
    // Writing a row for another owner is refused by the policy.
    let refused = tenant::scope(Tenant::Owner(first.owner_id), async {
        pool.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO audit_logs (id, owner_id, actor_type, action, resource_type, resource_id) \
             VALUES (gen_random_uuid(), $1, 'system', 'test', 'test', 'test')",
            [(*second.owner_id.as_uuid()).into()],
        ))
        .await
    })
    .await;
    let message = refused.expect_err("a row for another owner").to_string();
    assert!(message.contains("row-level security"), "{message}");
    pool.close().await.unwrap();
    role.drop().await;
}
