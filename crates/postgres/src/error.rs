//! Mapping database errors to domain errors: constraint violations that mean something to
//! the domain become typed errors; failures of the database itself are classified and carry
//! a domain [`Fault`] (so the API answers 503 with a code, not 500); everything else is
//! `anyhow` with context.

use anyhow::Context as _;
use sea_orm::sqlx;
use sea_orm::{DbErr, RuntimeErr, SqlErr};
use waiaas_domain::{
    AccessError, AgentError, ApprovalError, CreateWalletError, Fault, PostingError, RepoError,
    SetPolicyError,
};

/// How the database failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DbFault {
    /// An established connection broke: reset, closed, or terminated by the server. Nothing
    /// of an uncommitted transaction survives, so work that had not reached its commit may be
    /// retried on another connection.
    Lost,
    /// No connection could be had: refused, too many clients, the pool timed out or closed.
    Unreachable {
        /// The server said it has no connection slot left (`too_many_connections`).
        too_many_clients: bool,
    },
    /// A statement ran into the statement timeout.
    Timeout,
    /// A row lock was not granted within the lock timeout, or a serialisation failure or
    /// deadlock aborted the transaction: retrying later may succeed.
    Busy,
}

impl DbFault {
    /// The domain's name for it.
    pub(crate) const fn fault(self) -> Fault {
        match self {
            Self::Lost | Self::Unreachable { .. } => Fault::DatabaseUnavailable,
            Self::Timeout => Fault::Timeout,
            Self::Busy => Fault::WalletBusy,
        }
    }
}

/// Classifies a database error; `None` for errors that are not the infrastructure's doing
/// (constraint violations, bad SQL, decoding: bugs or domain errors).
pub(crate) fn classify(e: &DbErr) -> Option<DbFault> {
    match e {
        DbErr::ConnectionAcquire(_) => Some(DbFault::Unreachable {
            too_many_clients: false,
        }),
        DbErr::Conn(RuntimeErr::SqlxError(s))
        | DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s)) => classify_sqlx(s, matches!(e, DbErr::Conn(_))),
        DbErr::Conn(_) => Some(DbFault::Unreachable {
            too_many_clients: false,
        }),
        _ => None,
    }
}

fn classify_sqlx(e: &sqlx::Error, connecting: bool) -> Option<DbFault> {
    let broken = if connecting {
        DbFault::Unreachable {
            too_many_clients: false,
        }
    } else {
        DbFault::Lost
    };
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => Some(DbFault::Unreachable {
            too_many_clients: false,
        }),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => Some(broken),
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            match code.as_ref() {
                // query_canceled: the statement timeout (or an operator's cancel).
                "57014" => Some(DbFault::Timeout),
                // lock_not_available (lock timeout), serialization_failure, deadlock_detected.
                "55P03" | "40001" | "40P01" => Some(DbFault::Busy),
                // too_many_connections.
                "53300" => Some(DbFault::Unreachable {
                    too_many_clients: true,
                }),
                // admin_shutdown, crash_shutdown, cannot_connect_now; connection exceptions;
                // insufficient resources; read-only transaction (a standby after failover);
                // system errors (I/O).
                c if c.starts_with("57P")
                    || c.starts_with("08")
                    || c.starts_with("53")
                    || c.starts_with("58")
                    || c == "25006" =>
                {
                    Some(broken)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The classification of the database error somewhere in an error's causes, if any.
pub(crate) fn db_fault(e: &anyhow::Error) -> Option<DbFault> {
    e.chain()
        .find_map(|c| c.downcast_ref::<DbErr>())
        .and_then(classify)
}

/// Attaches the domain's [`Fault`] to an error caused by a database fault, unless one is
/// attached already (an ambiguous commit is marked where it happens).
pub(crate) fn with_fault(e: anyhow::Error) -> anyhow::Error {
    if Fault::of(&e).is_some() {
        return e;
    }
    match db_fault(&e) {
        Some(f) => e.context(f.fault()),
        None => e,
    }
}

/// Commits a transaction. A commit whose connection broke may or may not have been applied
/// by the server: that is [`Fault::OutcomeUnknown`], never a plain failure.
pub(crate) async fn commit(
    txn: sea_orm::DatabaseTransaction,
    what: &'static str,
) -> anyhow::Result<()> {
    match txn.commit().await {
        Ok(()) => Ok(()),
        Err(e) => {
            let ambiguous = matches!(
                classify(&e),
                Some(DbFault::Lost | DbFault::Unreachable { .. })
            );
            let e = anyhow::Error::new(e).context(what);
            if ambiguous {
                tracing::warn!(error = %format!("{e:#}"), "Connection lost while committing: the outcome is unknown");
                Err(e.context(Fault::OutcomeUnknown))
            } else {
                Err(with_fault(e))
            }
        }
    }
}

/// Wraps an unexpected database error with what was being done.
pub(crate) fn unknown(e: DbErr, doing: &'static str) -> anyhow::Error {
    with_fault(anyhow::Error::new(e).context(doing))
}

/// Whether the error is a foreign-key violation.
pub(crate) fn is_fk_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)))
}

/// Extension to turn `Result<T, DbErr>` into `anyhow::Result<T>` with context.
pub(crate) trait DbContext<T> {
    /// Adds what was being done, and the fault when the database failed.
    fn doing(self, what: &'static str) -> anyhow::Result<T>;
}

impl<T> DbContext<T> for Result<T, DbErr> {
    fn doing(self, what: &'static str) -> anyhow::Result<T> {
        self.context(what).map_err(with_fault)
    }
}

/// Extension to turn `Result<T, DbErr>` into `Result<T, RepoError>` with context.
pub(crate) trait RepoContext<T> {
    /// Adds what was being done, and the fault when the database failed.
    fn repo(self, what: &'static str) -> Result<T, RepoError>;
}

impl<T> RepoContext<T> for Result<T, DbErr> {
    fn repo(self, what: &'static str) -> Result<T, RepoError> {
        self.doing(what).map_err(RepoError)
    }
}

/// The errors of the ports: each may carry an unexpected cause.
pub(crate) trait Cause: Sized {
    /// The unexpected cause, if this is one.
    fn cause(&self) -> Option<&anyhow::Error>;
    /// Rewrites the unexpected cause.
    #[must_use]
    fn map_cause(self, f: impl FnOnce(anyhow::Error) -> anyhow::Error) -> Self;
    /// An unexpected failure.
    fn from_cause(e: anyhow::Error) -> Self;
}

impl Cause for RepoError {
    fn cause(&self) -> Option<&anyhow::Error> {
        Some(&self.0)
    }

    fn map_cause(self, f: impl FnOnce(anyhow::Error) -> anyhow::Error) -> Self {
        Self(f(self.0))
    }

    fn from_cause(e: anyhow::Error) -> Self {
        Self(e)
    }
}

macro_rules! cause_in_unknown {
    ($($t:ty),*) => {$(
        impl Cause for $t {
            fn cause(&self) -> Option<&anyhow::Error> {
                match self {
                    Self::Unknown(e) => Some(e),
                    _ => None,
                }
            }

            fn map_cause(self, f: impl FnOnce(anyhow::Error) -> anyhow::Error) -> Self {
                match self {
                    Self::Unknown(e) => Self::Unknown(f(e)),
                    other => other,
                }
            }

            fn from_cause(e: anyhow::Error) -> Self {
                Self::Unknown(e)
            }
        }
    )*};
}

cause_in_unknown!(
    PostingError,
    ApprovalError,
    AgentError,
    CreateWalletError,
    SetPolicyError,
    AccessError
);

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlx_io(kind: std::io::ErrorKind) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(sqlx::Error::Io(
            std::io::Error::from(kind),
        ))))
    }

    #[test]
    fn a_broken_connection_is_a_fault_and_a_bug_is_not() {
        assert_eq!(
            classify(&sqlx_io(std::io::ErrorKind::ConnectionReset)),
            Some(DbFault::Lost)
        );
        assert_eq!(
            classify(&DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)),
            Some(DbFault::Unreachable {
                too_many_clients: false
            })
        );
        assert_eq!(classify(&DbErr::Custom("bug".into())), None);
        assert_eq!(classify(&DbErr::RecordNotFound("x".into())), None);
    }

    #[test]
    fn the_fault_survives_layers_of_context() {
        let e = Err::<(), _>(sqlx_io(std::io::ErrorKind::UnexpectedEof))
            .doing("locking wallets")
            .context("posting a transfer")
            .unwrap_err();
        assert_eq!(Fault::of(&e), Some(Fault::DatabaseUnavailable));
        let plain = Err::<(), _>(DbErr::Custom("bug".into()))
            .doing("locking wallets")
            .unwrap_err();
        assert_eq!(Fault::of(&plain), None);
    }
}
