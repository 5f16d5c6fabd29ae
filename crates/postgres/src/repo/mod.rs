//! The repository adapters other than posting: plain reads and the small mutations, each
//! with its audit row in the same database transaction.

mod agents;
pub(crate) mod budgets;
pub(crate) mod events;
mod home;
pub(crate) mod mandates;
mod notifications;
mod owners;
mod policies;
mod sessions;
pub mod transactions;
mod wallets;
mod webhooks;
