//! PostgreSQL housekeeping: creating the database, migrating it, reporting status.

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use waiaas_migration::{Migrator, MigratorTrait as _};
use waiaas_postgres::PgSettings;

/// Splits a URL into the server's maintenance URL and the database name.
pub(crate) fn split_database(url: &str) -> Option<(String, String)> {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (server, db) = base.rsplit_once('/')?;
    if server.ends_with('/') || db.is_empty() {
        return None;
    }
    let admin = match query {
        Some(q) => format!("{server}/postgres?{q}"),
        None => format!("{server}/postgres"),
    };
    Some((admin, db.to_owned()))
}

/// Creates the database named in the URL when it does not exist yet.
///
/// # Errors
/// When the server cannot be reached or the user may not create databases.
pub async fn create_if_missing(settings: &PgSettings) -> anyhow::Result<()> {
    let Some((admin_url, name)) = split_database(&settings.url) else {
        return Ok(());
    };
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        anyhow::bail!("database name `{name}` must be letters, digits and underscores");
    }
    let admin_settings = PgSettings {
        url: admin_url.clone(),
        ..settings.clone()
    };
    let admin = connect_for_maintenance(&admin_settings).await?;
    let exists = admin
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.clone().into()],
        ))
        .await?
        .is_some();
    if !exists {
        if let Err(e) = admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
        {
            // Another instance may have created it at the same moment.
            let raced = admin
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT 1 FROM pg_database WHERE datname = $1",
                    [name.clone().into()],
                ))
                .await?
                .is_some();
            if !raced {
                return Err(e).with_context(|| format!("creating database `{name}`"));
            }
        }
        tracing::info!(database = %name, "Database created");
    }
    admin.close().await?;
    Ok(())
}

/// Opens the service's pool (statement and lock timeouts set).
///
/// # Errors
/// When PostgreSQL cannot be reached.
pub async fn connect(settings: &PgSettings) -> anyhow::Result<DatabaseConnection> {
    waiaas_postgres::connect(settings)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", settings.redacted_url()))
}

/// Opens a pool for maintenance: migrations and reconciliation run without the service's
/// statement and lock timeouts.
///
/// # Errors
/// When PostgreSQL cannot be reached.
pub async fn connect_for_maintenance(settings: &PgSettings) -> anyhow::Result<DatabaseConnection> {
    let mut small = settings.clone();
    small.min_connections = 0;
    small.max_connections = small.max_connections.clamp(1, 2);
    // An unreachable server is reported within the connect timeout, not the longer wait
    // for a pooled connection.
    small.acquire_timeout_ms = small.connect_timeout_ms.max(1);
    waiaas_postgres::connect_for_maintenance(&small)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", settings.redacted_url()))
}

/// What `migrate` can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the last `n` migrations.
    Down(u32),
    /// Print which migrations are applied.
    Status,
    /// Drop everything and apply every migration.
    Fresh,
}

/// Runs a migration action and returns a report to print.
///
/// # Errors
/// When a migration fails (it runs in a transaction and leaves nothing half-applied).
pub async fn migrate(db: &DatabaseConnection, action: MigrateAction) -> anyhow::Result<String> {
    match action {
        MigrateAction::Up => {
            let pending = Migrator::get_pending_migrations(db).await?.len();
            Migrator::up(db, None)
                .await
                .context("applying migrations")?;
            Ok(format!("applied {pending} migration(s)"))
        }
        MigrateAction::Down(n) => {
            Migrator::down(db, Some(n))
                .await
                .context("rolling back migrations")?;
            Ok(format!("rolled back {n} migration(s)"))
        }
        MigrateAction::Fresh => {
            Migrator::fresh(db).await.context("recreating the schema")?;
            Ok(format!(
                "recreated the schema with {} migration(s)",
                Migrator::migrations().len()
            ))
        }
        MigrateAction::Status => {
            let mut out = String::new();
            for m in Migrator::get_migration_with_status(db).await? {
                out.push_str(&format!("{:<50} {}\n", m.name(), m.status()));
            }
            Ok(out.trim_end().to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_database;

    #[test]
    fn the_maintenance_url_points_at_the_postgres_database() {
        assert_eq!(
            split_database("postgres://u@h:5432/waiaas"),
            Some(("postgres://u@h:5432/postgres".into(), "waiaas".into()))
        );
        assert_eq!(split_database("postgres://u@h:5432"), None);
    }
}
