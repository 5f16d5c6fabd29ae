//! # waiaas-postgres
//!
//! The PostgreSQL adapters of WAIaaS, on SeaORM 2: every repository port of
//! `waiaas-domain`, the posting engine that moves money in one database transaction, the
//! reconciliation check, and the cache fence (epoch and read leases) used by the cache layer.

mod audit;
mod convert;
pub mod entity;
mod error;
mod fence;
mod locks;
mod pool;
pub mod posting;
mod reconcile;
mod repo;

pub use locks::AdvisoryLocks;
pub use pool::{PgSettings, connect, redact as redact_url};
pub use reconcile::{ReconcileReport, reconcile};

use sea_orm::DatabaseConnection;

/// The PostgreSQL adapter: one connection pool, implementing every repository port.
#[derive(Debug, Clone)]
pub struct Postgres {
    db: DatabaseConnection,
}

impl Postgres {
    /// Wraps a connection pool (see [`connect`]).
    #[must_use]
    pub const fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The pool, for migrations and checks.
    #[must_use]
    pub const fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}
