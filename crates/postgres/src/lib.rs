//! # waiaas-postgres
//!
//! The PostgreSQL adapters of WAIaaS, on SeaORM 2: every repository port of
//! `waiaas-domain`, the posting engine that moves money in one database transaction, the
//! reconciliation check, and the cache fence (epoch and read leases) used by the cache layer.
//!
//! Every port method runs through [`Postgres::run`]: database faults are classified (the API
//! answers them 503 with a code), work that lost its connection before committing is retried
//! once on a tested connection, a server that cannot be reached is not flooded with
//! connection attempts, and writers cannot take the connections that authentication and
//! reads need.

mod audit;
pub mod chain;
mod convert;
pub mod entity;
mod error;
mod fence;
mod health;
mod locks;
mod pool;
pub mod posting;
mod reconcile;
mod replicas;
mod repo;

pub use locks::AdvisoryLocks;
pub use pool::{
    PgSettings, Pooler, connect, connect_for_maintenance, connect_replica, redact as redact_url,
};
pub use posting::batch::{BatchStats, Batching, batch_stats};
pub use reconcile::{ReconcileReport, reconcile};
pub use replicas::{format_position, parse_position};
/// The transaction-list query, for the test that checks its plan uses the indexes.
#[doc(hidden)]
pub use repo::transactions::{Scope as TxScope, page_sql as transaction_page_sql};

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sea_orm::DatabaseConnection;
use tokio::sync::Semaphore;
use waiaas_domain::Fault;

use crate::error::{Cause, DbFault};
use crate::health::{Admission, PoolHealth};

/// Whether an error was caused by PostgreSQL being unreachable or a connection breaking
/// (as opposed to a bug or a refusal), so the caller may simply try again later.
#[must_use]
pub fn is_connection_error(e: &anyhow::Error) -> bool {
    matches!(
        error::db_fault(e),
        Some(DbFault::Lost | DbFault::Unreachable { .. })
    )
}

/// The kind of work a port method does: writers queue for a share of the pool, so that
/// readers (authentication above all) always find a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// Reads, and writes that take no row lock another request could hold for long.
    Read,
    /// Transactions that lock rows (postings, agent and key changes).
    Write,
}

/// The PostgreSQL adapter: one connection pool, implementing every repository port.
#[derive(Debug, Clone)]
pub struct Postgres {
    db: DatabaseConnection,
    health: Arc<PoolHealth>,
    writers: Arc<Semaphore>,
    /// Tasks waiting now for one of the writers' connections.
    writers_waiting: Arc<AtomicUsize>,
    /// The database, for logs (no credentials).
    name: Arc<str>,
    /// The posting queue, when postings are batched.
    batch: Option<Arc<posting::batch::Queue>>,
    /// Read replicas for listings (none by default).
    replicas: Arc<replicas::Replicas>,
}

/// How many connections of a pool of `max` writers may hold at once: all but a quarter
/// (at least one) kept for readers, and at least one.
fn writer_share(max: u32) -> usize {
    let reserve = (max / 4).max(1);
    usize::try_from(max.saturating_sub(reserve).max(1)).unwrap_or(1)
}

impl Postgres {
    /// Wraps a connection pool (see [`connect`]).
    ///
    /// # Panics
    /// When the connection is not a PostgreSQL pool.
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        let pool = db.get_postgres_connection_pool();
        let key = health::key_of(&pool.connect_options());
        let writers = writer_share(pool.options().get_max_connections());
        Self {
            health: health::of(&key),
            writers: Arc::new(Semaphore::new(writers)),
            writers_waiting: Arc::default(),
            name: key.into(),
            db,
            batch: None,
            replicas: Arc::default(),
        }
    }

    /// Connections writers may still take before they wait (for the pool's gauges).
    #[must_use]
    pub fn writer_permits_available(&self) -> usize {
        self.writers.available_permits()
    }

    /// Tasks waiting now for one of the connections writers may take (for the pool's
    /// gauges): postings and other writes queued behind the writers' share of the pool.
    #[must_use]
    pub fn writers_waiting(&self) -> usize {
        self.writers_waiting.load(Ordering::Relaxed)
    }

    /// The pool, for migrations and checks.
    #[must_use]
    pub const fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Runs one port method's database work: admitted by the health gate, writers within
    /// their share of the pool, faults classified and recorded, and retried once when the
    /// connection broke before anything could have been committed.
    pub(crate) async fn run<T, E, F, Fut>(&self, work: Work, f: F) -> Result<T, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Cause,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let admission = self.health.admit(&self.db);
            if admission == Admission::Refuse {
                return Err(E::from_cause(
                    anyhow::anyhow!(
                        "PostgreSQL is unreachable; not trying again before the back-off ends"
                    )
                    .context(Fault::DatabaseUnavailable),
                ));
            }
            let permit = match work {
                Work::Read => None,
                Work::Write => Some(self.writer_permit().await.map_err(E::from_cause)?),
            };
            let result = f().await;
            drop(permit);
            let fault = match &result {
                Ok(_) => {
                    self.health.succeeded(&self.name);
                    return result;
                }
                Err(e) => e.cause().and_then(error::db_fault),
            };
            if let Some(f) = fault {
                self.health.failed(f, &self.name);
            }
            if admission == Admission::Probe && !matches!(fault, Some(DbFault::Unreachable { .. }))
            {
                self.health.probe_done();
            }
            let result = result.map_err(|e| e.map_cause(error::with_fault));
            let ambiguous = result
                .as_ref()
                .err()
                .and_then(Cause::cause)
                .and_then(Fault::of)
                == Some(Fault::OutcomeUnknown);
            if attempt == 1 && fault == Some(DbFault::Lost) && !ambiguous {
                tracing::info!(database = %self.name, "Connection lost before commit: retrying once on a tested connection");
                continue;
            }
            return result;
        }
    }

    async fn writer_permit(&self) -> anyhow::Result<tokio::sync::SemaphorePermit<'_>> {
        let wait = self
            .db
            .get_postgres_connection_pool()
            .options()
            .get_acquire_timeout();
        if let Ok(p) = self.writers.try_acquire() {
            return Ok(p);
        }
        // Counted while it waits, however the wait ends (a request cancelled mid-wait too).
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.writers_waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.writers_waiting);
        match tokio::time::timeout(wait, self.writers.acquire()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) | Err(_) => Err(anyhow::anyhow!(
                "every connection writers may use stayed busy for {} ms",
                wait.as_millis()
            )
            .context(Fault::DatabaseUnavailable)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn writers_leave_a_quarter_of_the_pool_to_readers() {
        assert_eq!(super::writer_share(20), 15);
        assert_eq!(super::writer_share(4), 3);
        assert_eq!(super::writer_share(2), 1);
        assert_eq!(super::writer_share(1), 1);
    }
}
