//! One PostgreSQL database per test, created from a template that is migrated once.

use std::sync::OnceLock;

use anyhow::{Context as _, bail};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use waiaas_migration::{Migrator, MigratorTrait as _};
use waiaas_postgres::{PgSettings, Postgres};

/// The variable naming a PostgreSQL server for tests (any database of it, e.g. `postgres`).
pub const DATABASE_URL_VAR: &str = "WAIAAS_TEST_DATABASE_URL";

#[cfg(feature = "containers")]
static CONTAINER_URL: OnceLock<String> = OnceLock::new();
static CHOSEN_URL: OnceLock<String> = OnceLock::new();

/// Points this process at a PostgreSQL server chosen by the caller (the benchmark's
/// `--database-url`), used when `WAIAAS_TEST_DATABASE_URL` is not set. Only the first call
/// counts.
pub fn use_database_server(url: &str) {
    let _ = CHOSEN_URL.set(url.to_owned());
}

/// The URL of a maintenance database on the test server: from `WAIAAS_TEST_DATABASE_URL`,
/// else a PostgreSQL 15 container (started once per process) when Docker is reachable.
///
/// # Errors
/// When neither is available, with a message that says what to set.
pub async fn admin_url() -> anyhow::Result<String> {
    if let Ok(url) = std::env::var(DATABASE_URL_VAR) {
        return Ok(url);
    }
    if let Some(url) = CHOSEN_URL.get() {
        return Ok(url.clone());
    }
    container_url().await
}

#[cfg(not(feature = "containers"))]
async fn container_url() -> anyhow::Result<String> {
    bail!(
        "no PostgreSQL for tests: set {DATABASE_URL_VAR} (for example \
         postgres://postgres@127.0.0.1:5432/postgres); this build has no container fallback"
    )
}

#[cfg(feature = "containers")]
async fn container_url() -> anyhow::Result<String> {
    if let Some(url) = CONTAINER_URL.get() {
        return Ok(url.clone());
    }
    if !docker_reachable() {
        bail!(
            "no PostgreSQL for tests: set {DATABASE_URL_VAR} (for example \
             postgres://postgres@127.0.0.1:5432/postgres) or start a Docker engine so \
             testcontainers can run postgres:15; `scripts/test` does this for you"
        );
    }
    let url = start_container().await?;
    Ok(CONTAINER_URL.get_or_init(|| url).clone())
}

#[cfg(feature = "containers")]
fn docker_reachable() -> bool {
    std::env::var_os("DOCKER_HOST").is_some()
        || std::os::unix::net::UnixStream::connect("/var/run/docker.sock").is_ok()
}

#[cfg(feature = "containers")]
async fn start_container() -> anyhow::Result<String> {
    use testcontainers::ImageExt as _;
    use testcontainers::runners::AsyncRunner as _;
    let container = testcontainers_modules::postgres::Postgres::default()
        .with_host_auth()
        .with_tag("15-alpine")
        .start()
        .await
        .context("starting a PostgreSQL container")?;
    let host = container.get_host().await?;
    let port = container.get_host_port_ipv4(5432).await?;
    // The container lives as long as the test process.
    std::mem::forget(container);
    Ok(format!("postgres://postgres@{host}:{port}/postgres"))
}

/// Replaces the database name of a URL.
#[must_use]
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(i) if base[..i].ends_with('/') => base,
        Some(i) => &base[..i],
        None => base,
    };
    let prefix = prefix.trim_end_matches('/');
    match query {
        Some(q) => format!("{prefix}/{db}?{q}"),
        None => format!("{prefix}/{db}"),
    }
}

/// Replaces the user of a URL (and drops its password): the same server and database, as
/// another role (trust authentication, as the test servers use).
#[must_use]
pub fn with_user(url: &str, user: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

fn template_name() -> String {
    // The template is rebuilt whenever a migration is added or changed.
    format!("waiaas_template_{}", waiaas_migration::fingerprint())
}

async fn exec(db: &DatabaseConnection, sql: &str) -> anyhow::Result<()> {
    db.execute_unprepared(sql)
        .await
        .with_context(|| format!("running `{sql}`"))?;
    Ok(())
}

/// Creates and migrates the template once per server, safely across test processes.
async fn ensure_template(admin: &DatabaseConnection, admin_url: &str) -> anyhow::Result<String> {
    let name = template_name();
    exec(admin, "SELECT pg_advisory_lock(727274)").await?;
    let result = async {
        let exists = admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT datname FROM pg_database WHERE datname = $1 AND datistemplate",
                [name.clone().into()],
            ))
            .await?
            .is_some();
        if !exists {
            // Templates of older schemas are of no further use.
            let stale = admin
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT datname FROM pg_database WHERE datname LIKE 'waiaas\\_template\\_%' AND datname <> $1",
                    [name.clone().into()],
                ))
                .await?;
            for row in stale {
                let old: String = row.try_get("", "datname")?;
                exec(admin, &format!("ALTER DATABASE {old} WITH IS_TEMPLATE false")).await?;
                exec(admin, &format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)")).await?;
            }
            exec(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
            exec(admin, &format!("CREATE DATABASE {name}")).await?;
            let db = Database::connect(with_database(admin_url, &name)).await?;
            Migrator::up(&db, None).await.context("migrating the template")?;
            db.close().await?;
            // Marked as a template only once complete, so a crash never leaves a half one.
            exec(admin, &format!("ALTER DATABASE {name} WITH IS_TEMPLATE true")).await?;
        }
        anyhow::Ok(name)
    }
    .await;
    exec(admin, "SELECT pg_advisory_unlock(727274)").await?;
    result
}

/// A fresh, migrated database that is dropped when the value is dropped.
#[derive(Debug)]
pub struct TestDb {
    /// The database's name.
    pub name: String,
    /// Its URL.
    pub url: String,
    admin_url: String,
    /// A small pool on it.
    pub db: DatabaseConnection,
}

impl TestDb {
    /// Creates a database from the migrated template, with a pool of up to 8 connections.
    ///
    /// # Panics
    /// When no PostgreSQL is available (the message says what to set).
    pub async fn new() -> Self {
        Self::with_pool(8).await
    }

    /// As [`TestDb::new`], with a pool of `max` connections.
    ///
    /// # Panics
    /// When no PostgreSQL is available.
    pub async fn with_pool(max: u32) -> Self {
        match Self::try_new(max).await {
            Ok(db) => db,
            Err(e) => panic!("{e:#}"),
        }
    }

    async fn try_new(max: u32) -> anyhow::Result<Self> {
        let admin_url = admin_url().await?;
        let admin = Database::connect(admin_url.as_str())
            .await
            .with_context(|| {
                format!("connecting to {}", waiaas_postgres::redact_url(&admin_url))
            })?;
        let template = ensure_template(&admin, &admin_url).await?;
        let name = format!("waiaas_t_{}", uuid::Uuid::new_v4().simple());
        exec(
            &admin,
            &format!("CREATE DATABASE {name} TEMPLATE {template}"),
        )
        .await?;
        admin.close().await?;
        let url = with_database(&admin_url, &name);
        let settings = PgSettings {
            url: url.clone(),
            min_connections: 0,
            max_connections: max,
            ..PgSettings::default()
        };
        let db = waiaas_postgres::connect(&settings).await?;
        Ok(Self {
            name,
            url,
            admin_url,
            db,
        })
    }

    /// The PostgreSQL adapter over this database.
    #[must_use]
    pub fn postgres(&self) -> Postgres {
        Postgres::new(self.db.clone())
    }

    /// The adapter over this database, posting transfers and payments in batches of up to
    /// `max_batch` (1: each in its own transaction, without a queue) with `workers` posting
    /// workers.
    #[must_use]
    pub fn postgres_batched(&self, workers: usize, max_batch: usize) -> Postgres {
        Postgres::new(self.db.clone())
            .with_batching(waiaas_postgres::Batching { workers, max_batch })
    }

    /// Settings that point at this database, for the service and the binaries.
    #[must_use]
    pub fn settings(&self, max_connections: u32) -> PgSettings {
        PgSettings {
            url: self.url.clone(),
            min_connections: 0,
            max_connections,
            ..PgSettings::default()
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Dropping needs async I/O; a short-lived thread with its own runtime does it even
        // when the test's runtime is shutting down.
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let admin = Database::connect(admin_url.as_str()).await?;
                exec(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await?;
                admin.close().await?;
                anyhow::Ok(())
            })
        });
        if let Ok(Err(e)) = handle.join() {
            eprintln!("could not drop test database {}: {e:#}", self.name);
        }
    }
}

/// Runs `sql` as the superuser behind the append-only triggers' back
/// (`session_replication_role = replica` for one transaction): what an attacker with the
/// database's superuser could do, and what tests of the checks that catch it need.
///
/// # Panics
/// When PostgreSQL refuses the statement.
pub async fn tamper(db: &sea_orm::DatabaseConnection, sql: &str) {
    use sea_orm::ConnectionTrait as _;
    db.execute_unprepared(&format!(
        "BEGIN; SET LOCAL session_replication_role = replica; {sql}; COMMIT"
    ))
    .await
    .unwrap_or_else(|e| panic!("tampering with `{sql}`: {e}"));
}

/// The column `v` of the one row `sql` returns, as text (`SELECT x::text AS v …`).
///
/// # Panics
/// When the query fails or returns no row.
pub async fn text_of(db: &sea_orm::DatabaseConnection, sql: &str) -> String {
    use sea_orm::ConnectionTrait as _;
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("`{sql}`: {e}"))
        .unwrap_or_else(|| panic!("`{sql}` returned no row"))
        .try_get::<String>("", "v")
        .unwrap_or_else(|e| panic!("`{sql}`: column v: {e}"))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "t1"),
            "postgres://u@h:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u@h:5432/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:5432", "t1"),
            "postgres://u@h:5432/t1"
        );
    }
}
