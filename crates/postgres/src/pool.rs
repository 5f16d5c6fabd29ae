//! The connection pool: sizes, timeouts and slow-statement logging from settings.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use serde::Deserialize;

/// How to reach PostgreSQL and size the pool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PgSettings {
    /// The connection URL (may hold a password: never log it).
    pub url: String,
    /// Connections kept open.
    pub min_connections: u32,
    /// Connections at most.
    pub max_connections: u32,
    /// How long to wait for a new connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// How long to wait for a free connection from the pool, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// How long an idle connection is kept, in milliseconds.
    pub idle_timeout_ms: u64,
    /// The server-side `statement_timeout`, in milliseconds.
    pub statement_timeout_ms: u64,
    /// Statements slower than this are logged as slow, in milliseconds.
    pub slow_statement_ms: u64,
}

impl Default for PgSettings {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/waiaas".to_owned(),
            min_connections: 5,
            max_connections: 20,
            connect_timeout_ms: 2_000,
            acquire_timeout_ms: 5_000,
            idle_timeout_ms: 30_000,
            statement_timeout_ms: 30_000,
            slow_statement_ms: 1_000,
        }
    }
}

impl PgSettings {
    /// The URL with any password replaced, for logs.
    #[must_use]
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

/// Replaces the password of a `scheme://user:password@host` URL with `***`.
#[must_use]
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Opens the pool.
///
/// # Errors
/// `DbErr` when PostgreSQL cannot be reached within the connect timeout.
pub async fn connect(settings: &PgSettings) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(settings.url.clone());
    opts.min_connections(settings.min_connections)
        .max_connections(settings.max_connections)
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .idle_timeout(Duration::from_millis(settings.idle_timeout_ms))
        .statement_timeout(Duration::from_millis(settings.statement_timeout_ms))
        .set_application_name("waiaas")
        // Ping only connections idle long enough to have been dropped by a proxy or the
        // server: a ping on every checkout would add a round trip to every request.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        // Statements are logged at TRACE; those over the threshold at WARN, as slow.
        .sqlx_logging(true)
        .sqlx_logging_level(log::LevelFilter::Trace)
        .sqlx_slow_statements_logging_settings(
            log::LevelFilter::Warn,
            Duration::from_millis(settings.slow_statement_ms),
        );
    tracing::debug!(url = %settings.redacted_url(), max = settings.max_connections, "Connecting to PostgreSQL");
    Database::connect(opts).await
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_password_never_reaches_the_log() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
