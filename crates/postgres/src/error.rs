//! Mapping database errors to domain errors: constraint violations that mean something to
//! the domain become typed errors; everything else is `anyhow` with context.

use anyhow::Context as _;
use sea_orm::{DbErr, SqlErr};

/// Wraps an unexpected database error with what was being done.
pub(crate) fn unknown(e: DbErr, doing: &'static str) -> anyhow::Error {
    Err::<(), _>(e).context(doing).unwrap_err()
}

/// Whether the error is a foreign-key violation.
pub(crate) fn is_fk_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)))
}

/// Extension to turn `Result<T, DbErr>` into `anyhow::Result<T>` with context.
pub(crate) trait DbContext<T> {
    /// Adds what was being done.
    fn doing(self, what: &'static str) -> anyhow::Result<T>;
}

impl<T> DbContext<T> for Result<T, DbErr> {
    fn doing(self, what: &'static str) -> anyhow::Result<T> {
        self.context(what)
    }
}

/// Extension to turn `Result<T, DbErr>` into `Result<T, RepoError>` with context.
pub(crate) trait RepoContext<T> {
    /// Adds what was being done.
    fn repo(self, what: &'static str) -> Result<T, waiaas_domain::RepoError>;
}

impl<T> RepoContext<T> for Result<T, DbErr> {
    fn repo(self, what: &'static str) -> Result<T, waiaas_domain::RepoError> {
        self.context(what).map_err(waiaas_domain::RepoError)
    }
}
