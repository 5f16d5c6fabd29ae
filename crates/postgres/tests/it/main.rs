//! Integration tests of the PostgreSQL adapters against a real server: one database per test,
//! cloned from a migrated template.

mod approval;
mod bad_input;
mod batch;
mod budgets;
mod chain;
mod concurrency;
mod events;
mod fence;
mod holds;
mod idempotency;
mod mandates;
mod migrations;
mod pooler;
mod reads;
mod reconcile;
mod tenancy;

/// Begins a transaction on `db` that locks wallet `id` (`FOR UPDATE`), as other work holding
/// it would, until it is rolled back.
pub(crate) async fn lock_wallet(
    db: &sea_orm::DatabaseConnection,
    id: waiaas_domain::WalletId,
) -> sea_orm::DatabaseTransaction {
    use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
    let blocker = db.begin().await.unwrap();
    blocker
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT id FROM wallets WHERE id = $1 FOR UPDATE",
            [(*id.as_uuid()).into()],
        ))
        .await
        .unwrap();
    blocker
}
