//! `SeaORM` entities, one per table of the migration crate.

pub mod agents;
pub mod api_keys;
pub mod assets;
pub mod audit_logs;
pub mod ledger_entries;
pub mod notifications;
pub mod owners;
pub mod sessions;
pub mod transactions;
pub mod wallet_daily_spend;
pub mod wallet_policies;
pub mod wallets;
