//! Cached decorators of the domain's repositories: reads go through the cache, and every
//! committed write updates or tombstones its entries before it is acknowledged.

mod credentials;
mod deliveries;
mod ledger;
mod wallets;

use std::sync::Arc;

use waiaas_domain::Ports;

pub use credentials::{CachedAgents, CachedNotifications, CachedSessions};
pub use deliveries::CachedDeliveries;
pub use ledger::CachedTransactions;
pub use wallets::{CachedPolicies, CachedWallets};

use crate::{Cache, Unfenced};

/// Runs committed work and the cache step that must follow it on a task of its own, and
/// waits for it: when the caller goes away (a client disconnecting, a request timing out),
/// the work still runs to completion, so Redis never keeps an entry a commit replaced.
pub(crate) async fn detached<T, E, Fut>(work: Fut) -> Result<T, E>
where
    Fut: std::future::Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<anyhow::Error> + Send + 'static,
{
    // The task carries the caller's span: a trace shows the write under its request.
    match tokio::spawn(tracing::Instrument::in_current_span(work)).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(E::from(anyhow::anyhow!(
            "the write was cancelled with the runtime: {e}"
        ))),
    }
}

/// The error a write reports when its change could not be made visible safely: a fault of
/// the infrastructure (PostgreSQL, where the fence lives, did not answer), so the client is
/// told to retry, and the retry writes the current state through.
pub(crate) fn unfenced<E: From<anyhow::Error>>(e: Unfenced) -> E {
    E::from(anyhow::Error::new(e).context(waiaas_domain::Fault::DatabaseUnavailable))
}

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
