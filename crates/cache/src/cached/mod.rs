//! Cached decorators of the domain's repositories: reads go through the cache, and every
//! committed write updates or tombstones its entries before it is acknowledged.

mod credentials;
mod ledger;
mod wallets;

use std::sync::Arc;

use waiaas_domain::Ports;

pub use credentials::{CachedAgents, CachedNotifications, CachedSessions};
pub use ledger::CachedTransactions;
pub use wallets::{CachedPolicies, CachedWallets};

use crate::Cache;

/// Puts the cache in front of every repository that has cached entries.
#[must_use]
pub fn wrap(ports: Ports, cache: &Arc<Cache>) -> Ports {
    Ports {
        wallets: Arc::new(CachedWallets::new(ports.wallets, cache.clone())),
        policies: Arc::new(CachedPolicies::new(ports.policies, cache.clone())),
        transactions: Arc::new(CachedTransactions::new(ports.transactions, cache.clone())),
        sessions: Arc::new(CachedSessions::new(ports.sessions, cache.clone())),
        agents: Arc::new(CachedAgents::new(ports.agents, cache.clone())),
        notifications: Arc::new(CachedNotifications::new(ports.notifications, cache.clone())),
        ..ports
    }
}
