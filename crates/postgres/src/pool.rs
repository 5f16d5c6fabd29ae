//! The connection pool: sizes, timeouts and slow-statement logging from settings.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::sqlx::postgres::PgSslMode;
use sea_orm::{
    ConnectOptions, ConnectionTrait as _, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    TransactionTrait as _,
};
use serde::Deserialize;

/// How to reach PostgreSQL and size the pool. Its `Debug` shows the URL redacted.
#[derive(Clone, PartialEq, Eq, Deserialize)]
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
    /// The server-side `statement_timeout`, in milliseconds. Keep it below the request
    /// timeout, so a slow statement is reported as such.
    pub statement_timeout_ms: u64,
    /// The server-side `lock_timeout`, in milliseconds: a posting that waits longer for a
    /// wallet another transaction holds gives up (`wallet_busy`) instead of holding its
    /// connection. 0 waits for ever.
    pub lock_timeout_ms: u64,
    /// Statements slower than this are logged as slow, in milliseconds.
    pub slow_statement_ms: u64,
    /// TLS, as libpq's `sslmode`: `disable`, `prefer` (TLS when the server offers it),
    /// `require` (TLS or no connection, the server's certificate not checked), `verify-ca`
    /// (and signed by `sslrootcert`), `verify-full` (and issued for the host connected to).
    /// None leaves it to the URL (`?sslmode=`), else `prefer`.
    pub sslmode: Option<String>,
    /// The CA certificates (PEM) the server's certificate must chain to.
    pub sslrootcert: Option<String>,
    /// A client certificate (PEM), for servers that ask for one.
    pub sslcert: Option<String>,
    /// The client certificate's private key (PEM).
    pub sslkey: Option<String>,
    /// What stands between the service and PostgreSQL (see [`Pooler`]).
    pub pooler: Pooler,
}

/// What stands between the service and PostgreSQL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pooler {
    /// PostgreSQL itself, or a pooler that gives each client connection a server
    /// connection of its own (PgBouncer in session mode).
    #[default]
    None,
    /// PgBouncer in transaction mode: a server connection is the client's only until its
    /// transaction ends. Statements are sent unnamed, each parsed and executed in one round
    /// trip (no statement cache); `statement_timeout` and `lock_timeout` are set at the start
    /// of each transaction the service opens (`SET LOCAL`), not as startup parameters,
    /// which PgBouncer refuses; a role subject to row-level security is refused (the tenant
    /// is a session setting a transaction pooler would hand to other clients).
    PgbouncerTransaction,
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
            statement_timeout_ms: 10_000,
            lock_timeout_ms: 2_000,
            slow_statement_ms: 1_000,
            sslmode: None,
            sslrootcert: None,
            sslcert: None,
            sslkey: None,
            pooler: Pooler::None,
        }
    }
}

impl PgSettings {
    /// The URL with any password replaced, for logs.
    #[must_use]
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    /// The TLS mode set, checked.
    ///
    /// # Errors
    /// A mode libpq does not know, or a client certificate without its key (or a key
    /// without its certificate).
    pub fn ssl_mode(&self) -> Result<Option<PgSslMode>, DbErr> {
        if self.sslcert.is_some() != self.sslkey.is_some() {
            return Err(DbErr::Custom(
                "database.sslcert and database.sslkey go together: set both or neither".to_owned(),
            ));
        }
        self.sslmode
            .as_deref()
            .map(|m| {
                m.parse::<PgSslMode>().map_err(|_| {
                    DbErr::Custom(format!(
                        "database.sslmode `{m}` is not one of disable, prefer, require, verify-ca, verify-full"
                    ))
                })
            })
            .transpose()
    }
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &redact(&self.url))
            .field("min_connections", &self.min_connections)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("lock_timeout_ms", &self.lock_timeout_ms)
            .field("slow_statement_ms", &self.slow_statement_ms)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("sslcert", &self.sslcert)
            .field("sslkey", &self.sslkey)
            .field("pooler", &self.pooler)
            .finish()
    }
}

/// Replaces the password of a `scheme://user:password@host` URL with `***` (the user
/// information ends at the last `@` before the path, since a password may hold `@`), and the
/// value of any `password` or `sslpassword` query parameter.
#[must_use]
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    // The authority runs to the first `/` after the last `@`.
    let (authority, path) = match before_query.rfind('@') {
        Some(at) => match before_query[at..].find('/') {
            Some(slash) => before_query.split_at(at + slash),
            None => (before_query, ""),
        },
        None => match before_query.find('/') {
            Some(slash) => before_query.split_at(slash),
            None => (before_query, ""),
        },
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _))
                    if k.eq_ignore_ascii_case("password")
                        || k.eq_ignore_ascii_case("sslpassword") =>
                {
                    format!("{k}=***")
                }
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// Opens the pool of the service: statement and lock timeouts set on every connection,
/// pooled connections tested before reuse when they have been idle for 30 s or since a
/// broken connection was last seen (see `health`), and the tenant the taking task acts for
/// ([`waiaas_domain::tenant`]) set on every connection taken, when the role is subject to
/// row-level security.
///
/// # Errors
/// `DbErr` when PostgreSQL cannot be reached within the connect timeout.
pub async fn connect(settings: &PgSettings) -> Result<DatabaseConnection, DbErr> {
    pooled(settings, false).await
}

/// The pool of [`connect`], or with `replica` that of [`connect_replica`].
async fn pooled(settings: &PgSettings, replica: bool) -> Result<DatabaseConnection, DbErr> {
    let timeouts = [
        ("statement_timeout", settings.statement_timeout_ms),
        ("lock_timeout", settings.lock_timeout_ms),
    ];
    let mut opts = options(settings, Some(timeouts))?;
    if replica {
        opts.min_connections(0).connect_lazy(true);
    }
    let tenancy = Arc::new(Tenancy::default());
    let url: Option<sea_orm::sqlx::postgres::PgConnectOptions> = settings.url.parse().ok();
    let health = url
        .as_ref()
        .map(|parsed| crate::health::of(&crate::health::key_of(parsed)));
    let seen = tenancy.clone();
    opts.map_sqlx_postgres_before_acquire(move |conn, meta| {
        let suspect = health.as_ref().is_some_and(|h| h.suspect(meta.idle_for));
        // Read here, in the task taking the connection.
        let tenant = seen
            .subject
            .load(Ordering::Relaxed)
            .then(|| waiaas_domain::tenant::current().setting());
        Box::pin(async move {
            if let Some(tenant) = tenant {
                // A round trip that also proves the connection alive: one that fails it is
                // dropped and replaced.
                return Ok(sea_orm::sqlx::query(SET_TENANT)
                    .bind(tenant)
                    .execute(&mut *conn)
                    .await
                    .is_ok());
            }
            if suspect {
                use sea_orm::sqlx::Connection as _;
                // A connection that fails the ping is dropped and replaced.
                return Ok(conn.ping().await.is_ok());
            }
            Ok(true)
        })
    });
    tenant_on_connect(&mut opts, tenancy.clone(), false);
    tracing::debug!(url = %settings.redacted_url(), max = settings.max_connections, replica, pooler = ?settings.pooler, "Connecting to PostgreSQL");
    let db = Database::connect(opts).await?;
    if settings.pooler == Pooler::PgbouncerTransaction {
        // The first connection, made by `connect`, has found out. (A lazy replica pool has
        // not connected yet; replicas are reached as the primary's role, which this check
        // on the primary's pool refuses first.)
        if tenancy.subject.load(Ordering::Relaxed) {
            return Err(DbErr::Custom(format!(
                "database.pooler = \"pgbouncer-transaction\" cannot serve as a role under row-level security ({}): the tenant each connection names is a session setting, which a transaction pooler hands to other clients; connect as the tables' owner or a role that bypasses row-level security, or use PgBouncer in session mode (pooler = \"none\")",
                settings.redacted_url()
            )));
        }
        let pool = db.get_postgres_connection_pool();
        per_transaction::register(
            crate::health::key_of(&pool.connect_options()),
            format!(
                "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
                timeouts[0].1, timeouts[1].1
            ),
        );
    }
    Ok(db)
}

/// Opens a transaction on a pool of [`connect`]: behind a transaction pooler, with the
/// pool's statement and lock timeouts set for it (`SET LOCAL`, one round trip), since
/// startup parameters cannot carry them there.
pub(crate) trait Begin {
    /// `begin`, and the pool's per-transaction settings.
    fn start(&self) -> impl Future<Output = Result<DatabaseTransaction, DbErr>> + Send;
}

impl Begin for DatabaseConnection {
    async fn start(&self) -> Result<DatabaseTransaction, DbErr> {
        let txn = self.begin().await?;
        if let Some(sql) = per_transaction::of(self) {
            txn.execute_unprepared(&sql).await?;
        }
        Ok(txn)
    }
}

/// The statements each transaction of a pool behind a transaction pooler starts with, by
/// the pool's server (`health::key_of`).
mod per_transaction {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, OnceLock, PoisonError};

    use sea_orm::DatabaseConnection;

    static ANY: AtomicBool = AtomicBool::new(false);
    static BY_SERVER: OnceLock<Mutex<HashMap<String, Arc<str>>>> = OnceLock::new();

    fn map() -> std::sync::MutexGuard<'static, HashMap<String, Arc<str>>> {
        BY_SERVER
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn register(server: String, sql: String) {
        map().insert(server, sql.into());
        ANY.store(true, Ordering::Release);
    }

    /// None for pools that are not behind a transaction pooler (without a look-up while no
    /// such pool was ever opened).
    pub(super) fn of(db: &DatabaseConnection) -> Option<Arc<str>> {
        if !ANY.load(Ordering::Acquire) {
            return None;
        }
        let server = crate::health::key_of(&db.get_postgres_connection_pool().connect_options());
        map().get(&server).cloned()
    }
}

/// A pool for a read replica: as [`connect`] (same role, timeouts and tenancy), but lazy
/// (a replica that is down at start does not stop the service; reads then use the
/// primary) and without idle connections kept open.
///
/// # Errors
/// When the settings are invalid (an unknown `sslmode`).
pub async fn connect_replica(settings: &PgSettings) -> Result<DatabaseConnection, DbErr> {
    pooled(settings, true).await
}

/// Whether the role of a pool's connections is subject to row-level security (neither a
/// superuser, nor allowed to bypass it, nor the tables' owner), as its last new connection
/// found. When it is not, nothing is sent on checkout.
#[derive(Debug, Default)]
struct Tenancy {
    subject: AtomicBool,
}

const SET_TENANT: &str = "SELECT set_config('waiaas.tenant', $1, false)";

/// Sets the tenant and reads whether the role is subject to row-level security: it is turned
/// on for the tenant tables (`wallets` stands for them all: `waiaas db roles` switches them
/// together) and the role neither bypasses it nor owns them.
const SET_TENANT_AND_DETECT: &str = "SELECT set_config('waiaas.tenant', $1, false) AS tenant, \
COALESCE((SELECT c.relrowsecurity AND NOT pg_has_role(c.relowner, 'USAGE') \
FROM pg_class c WHERE c.oid = to_regclass('wallets')), false) \
AND NOT (r.rolsuper OR r.rolbypassrls) AS subject \
FROM pg_roles r WHERE r.rolname = current_user";

/// Every new connection says whom the task opening it acts for (always the system when
/// `system`), and finds out whether its role is subject to row-level security.
fn tenant_on_connect(opts: &mut ConnectOptions, tenancy: Arc<Tenancy>, system: bool) {
    opts.map_sqlx_postgres_pool_opts(move |pool| {
        let tenancy = tenancy.clone();
        pool.after_connect(move |conn, _| {
            let tenancy = tenancy.clone();
            let tenant = if system {
                waiaas_domain::tenant::Tenant::System
            } else {
                waiaas_domain::tenant::current()
            }
            .setting();
            Box::pin(async move {
                use sea_orm::sqlx::Row as _;
                let row = sea_orm::sqlx::query(SET_TENANT_AND_DETECT)
                    .bind(tenant)
                    .fetch_one(&mut *conn)
                    .await?;
                tenancy
                    .subject
                    .store(row.try_get::<bool, _>("subject")?, Ordering::Relaxed);
                Ok(())
            })
        })
    });
}

/// Opens a pool for maintenance (migrations, reconciliation, creating the database):
/// without the statement and lock timeouts of the service, which would cut a long migration
/// short.
///
/// # Errors
/// `DbErr` when PostgreSQL cannot be reached within the connect timeout.
pub async fn connect_for_maintenance(settings: &PgSettings) -> Result<DatabaseConnection, DbErr> {
    let mut opts = options(settings, None)?;
    // Maintenance acts for the system: every row, whatever role it connects as.
    tenant_on_connect(&mut opts, Arc::default(), true);
    Database::connect(opts).await
}

fn options(
    settings: &PgSettings,
    timeouts: Option<[(&'static str, u64); 2]>,
) -> Result<ConnectOptions, DbErr> {
    let mode = settings.ssl_mode()?;
    let (root, cert, key) = (
        settings.sslrootcert.clone(),
        settings.sslcert.clone(),
        settings.sslkey.clone(),
    );
    let pooler = settings.pooler;
    let mut opts = ConnectOptions::new(settings.url.clone());
    opts.map_sqlx_postgres_opts(move |mut o| {
        if pooler == Pooler::PgbouncerTransaction {
            // Nothing is prepared by name: each statement is parsed and executed unnamed in
            // one round trip (vendor/README.md). The timeouts are set per transaction.
            // And no startup parameter PgBouncer does not know by default.
            o = o.statement_cache_capacity(0).extra_float_digits(None);
        } else if let Some(t) = timeouts {
            o = o.options(t.iter().map(|(k, v)| (*k, v.to_string())));
        }
        if let Some(m) = mode {
            o = o.ssl_mode(m);
        }
        if let Some(p) = &root {
            o = o.ssl_root_cert(p);
        }
        if let (Some(c), Some(k)) = (&cert, &key) {
            o = o.ssl_client_cert(c).ssl_client_key(k);
        }
        o
    });
    opts.min_connections(settings.min_connections)
        .max_connections(settings.max_connections)
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .idle_timeout(Duration::from_millis(settings.idle_timeout_ms))
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
    Ok(opts)
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
        assert_eq!(
            redact("postgres://u:p@ss@w0rd@h:5432/db"),
            "postgres://u:***@h:5432/db",
            "a password holding `@` is redacted whole"
        );
        assert_eq!(
            redact("postgres://u@h/db?sslmode=require&password=hunter2"),
            "postgres://u@h/db?sslmode=require&password=***"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn settings_debug_never_shows_the_password() {
        let s = super::PgSettings {
            url: "postgres://u:hunter2@h/db".to_owned(),
            ..Default::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("u:***@h"), "{shown}");
    }
}
