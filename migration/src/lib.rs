//! The schema of WAIaaS, as sea-orm migrations. This crate is the schema's single source of
//! truth and knows no other crate of the workspace. Every migration has a working `down`.
//!
//! Migrations are written as plain PostgreSQL DDL: CHECK constraints, partial and GIN
//! indexes and INET columns are said most clearly in SQL.

use sea_orm_migration::prelude::*;

mod m20261122_000001_owners_agents_credentials;
mod m20261122_000002_assets_wallets_policies;
mod m20261122_000003_transactions_ledger_spend;
mod m20261122_000004_audit_notifications;
mod m20261122_000005_cache_fence;
mod m20261202_000006_hardening;
mod m20261203_000007_key_expiry;
mod m20261203_000008_holds;
mod m20261203_000009_budgets;
mod m20261203_000010_mandates;
mod m20261203_000011_events;
mod m20261203_000012_webhooks;
mod m20261203_000013_record_events;
mod m20261203_000014_key_sessions;
mod m20261203_000015_append_only;
mod m20261203_000016_ledger_chain;
mod m20261203_000017_row_level_security;
mod m20261204_000018_chain_seals;

/// The tables with an owner's rows, under row-level security when it is turned on.
pub use m20261203_000017_row_level_security::TABLES as TENANT_TABLES;

pub use sea_orm_migration::MigratorTrait;

/// All migrations, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_owners_agents_credentials::Migration),
            Box::new(m20261122_000002_assets_wallets_policies::Migration),
            Box::new(m20261122_000003_transactions_ledger_spend::Migration),
            Box::new(m20261122_000004_audit_notifications::Migration),
            Box::new(m20261122_000005_cache_fence::Migration),
            Box::new(m20261202_000006_hardening::Migration),
            Box::new(m20261203_000007_key_expiry::Migration),
            Box::new(m20261203_000008_holds::Migration),
            Box::new(m20261203_000009_budgets::Migration),
            Box::new(m20261203_000010_mandates::Migration),
            Box::new(m20261203_000011_events::Migration),
            Box::new(m20261203_000012_webhooks::Migration),
            Box::new(m20261203_000013_record_events::Migration),
            Box::new(m20261203_000014_key_sessions::Migration),
            Box::new(m20261203_000015_append_only::Migration),
            Box::new(m20261203_000016_ledger_chain::Migration),
            Box::new(m20261203_000017_row_level_security::Migration),
            Box::new(m20261204_000018_chain_seals::Migration),
        ]
    }
}

/// Runs each statement of a `;`-separated script. Statements must not contain `;` inside.
pub(crate) async fn run(manager: &SchemaManager<'_>, script: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for stmt in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        db.execute_unprepared(stmt).await?;
    }
    Ok(())
}

/// A fingerprint of the whole schema (every migration's name and SQL, up and down): test
/// kits key their migrated template databases on it, so any change rebuilds them.
#[must_use]
pub fn fingerprint() -> String {
    let parts = [
        m20261122_000001_owners_agents_credentials::UP,
        m20261122_000001_owners_agents_credentials::DOWN,
        m20261122_000002_assets_wallets_policies::UP,
        m20261122_000002_assets_wallets_policies::DOWN,
        m20261122_000003_transactions_ledger_spend::UP,
        m20261122_000003_transactions_ledger_spend::DOWN,
        m20261122_000004_audit_notifications::UP,
        m20261122_000004_audit_notifications::DOWN,
        m20261122_000005_cache_fence::UP,
        m20261122_000005_cache_fence::DOWN,
        m20261202_000006_hardening::UP,
        m20261202_000006_hardening::DOWN,
        m20261203_000007_key_expiry::UP,
        m20261203_000007_key_expiry::DOWN,
        m20261203_000008_holds::UP,
        m20261203_000008_holds::DOWN,
        m20261203_000009_budgets::UP,
        m20261203_000009_budgets::DOWN,
        m20261203_000010_mandates::UP,
        m20261203_000010_mandates::DOWN,
        m20261203_000011_events::UP,
        m20261203_000011_events::FUNCTION,
        m20261203_000011_events::TRIGGERS,
        m20261203_000011_events::DOWN,
        m20261203_000012_webhooks::UP,
        m20261203_000012_webhooks::DOWN,
        m20261203_000013_record_events::UP,
        m20261203_000013_record_events::TRIGGERS,
        m20261203_000013_record_events::DOWN,
        m20261203_000014_key_sessions::UP,
        m20261203_000014_key_sessions::DOWN,
        m20261203_000015_append_only::UP,
        m20261203_000015_append_only::DOWN,
        m20261203_000016_ledger_chain::UP,
        m20261203_000016_ledger_chain::DOWN,
        m20261204_000018_chain_seals::UP,
        m20261204_000018_chain_seals::DOWN,
    ];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in names()
        .join(",")
        .bytes()
        .chain(parts.iter().flat_map(|p| p.bytes()))
        .chain(m20261203_000017_row_level_security::text().into_bytes())
        .chain(
            m20261203_000013_record_events::FUNCTIONS
                .iter()
                .chain(m20261203_000015_append_only::FUNCTIONS.iter())
                .flat_map(|p| p.bytes()),
        )
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The migration names, oldest first, for status reports.
#[must_use]
pub fn names() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}
