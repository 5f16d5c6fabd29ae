//! The service's settings: one typed struct, layered with the `config` crate as built-in
//! defaults → `config/default.toml` → `config/<WAIAAS_ENV>.toml` → `WAIAAS__SECTION__KEY`
//! environment variables. Secrets are `secrecy` types and never printed.

use std::path::Path;

use anyhow::Context as _;
use secrecy::SecretString;
use serde::Deserialize;
use waiaas_postgres::{PgSettings, Pooler};

/// Everything the service can be told.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The HTTP server.
    pub server: ServerSettings,
    /// PostgreSQL.
    pub database: DatabaseSettings,
    /// Redis.
    pub redis: RedisSettings,
    /// Cache TTLs and resilience.
    pub cache: CacheSettings,
    /// Credentials.
    pub auth: AuthSettings,
    /// Per-principal request limits.
    pub rate_limit: RateLimitSettings,
    /// Holds and their expiry.
    pub holds: HoldSettings,
    /// The posting engine: batched postings.
    pub posting: PostingSettings,
    /// The events relay.
    pub events: EventSettings,
    /// Webhook deliveries.
    pub webhooks: WebhookSettings,
    /// The tamper-evident ledger's sealer.
    pub ledger: LedgerSettings,
    /// Logs.
    pub telemetry: TelemetrySettings,
}

/// The posting engine: transfers, payments, holds and deposits queue for a few posting
/// workers, each of which posts what has queued (up to `batch_size`, never waiting for more) in one
/// PostgreSQL transaction.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostingSettings {
    /// Posting workers per instance (each holds one connection while it posts a batch).
    pub workers: usize,
    /// The most postings one batch carries; 1 posts each in its own transaction, without
    /// the queue.
    pub batch_size: usize,
}

impl Default for PostingSettings {
    fn default() -> Self {
        Self {
            workers: 4,
            batch_size: 64,
        }
    }
}

impl PostingSettings {
    /// The adapter's batching.
    #[must_use]
    pub const fn batching(&self) -> waiaas_postgres::Batching {
        waiaas_postgres::Batching {
            workers: self.workers,
            max_batch: self.batch_size,
        }
    }
}

/// The tamper-evident ledger: how often each instance seals what has committed into the
/// hash chain (instances take turns; one sealing at a time).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerSettings {
    /// Milliseconds between two runs of the sealer; 0 turns it off on this instance.
    pub seal_interval_ms: u64,
    /// The most rows one seal (one transaction) takes; a full one is followed by another.
    pub seal_batch: u32,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        Self {
            seal_interval_ms: 1_000,
            seal_batch: 2_000,
        }
    }
}

/// Holds: how often each instance releases the holds past their expiry.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoldSettings {
    /// Milliseconds between two runs of the expiry sweeper (every instance runs it; no hold
    /// is released twice).
    pub sweep_interval_ms: u64,
    /// The most holds one run looks at; a full batch is followed by another run at once.
    pub sweep_batch: u32,
}

impl Default for HoldSettings {
    fn default() -> Self {
        Self {
            sweep_interval_ms: 1_000,
            sweep_batch: 100,
        }
    }
}

/// The events relay: every instance places committed events in the stream and reads them
/// into its live streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSettings {
    /// The longest time, in milliseconds, before an instance reads events that another
    /// instance committed when the doorbell (Redis pub/sub) did not reach it.
    pub poll_interval_ms: u64,
    /// Milliseconds the relay lets this instance's commits gather before it places their
    /// events, so that a busy instance places many per statement (0: each at once).
    pub gather_ms: u64,
    /// The most events placed or read in one statement.
    pub batch: u32,
    /// Events one live stream may fall behind before it resumes from PostgreSQL.
    pub stream_buffer: usize,
    /// Event streams (SSE and WebSocket) one principal may hold open on one instance;
    /// beyond it a new one is refused with `429 too_many_streams`.
    pub max_streams_per_principal: usize,
    /// Event streams one instance holds open in all; beyond it `429 instance_streams_full`.
    pub max_streams_per_instance: usize,
    /// Events older than this many days are deleted (0 keeps them for ever).
    pub retention_days: u32,
    /// Seconds between two runs of the retention job (one instance at a time runs it, under
    /// the lock `job:name:events-retention`).
    pub retention_interval_s: u64,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1_000,
            gather_ms: 10,
            batch: 500,
            stream_buffer: 4_096,
            max_streams_per_principal: 16,
            max_streams_per_instance: 10_000,
            retention_days: 30,
            retention_interval_s: 3_600,
        }
    }
}

/// Webhooks: every instance runs delivery workers; a delivery is claimed by one of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Let endpoints use `http://` and private, loopback or link-local addresses (for tests
    /// and closed networks; off by default against server-side request forgery).
    pub allow_private_networks: bool,
    /// Milliseconds between two looks for due deliveries.
    pub poll_interval_ms: u64,
    /// The most deliveries claimed at once by one instance.
    pub batch: u32,
    /// The most requests one instance has in flight.
    pub concurrency: usize,
    /// How long a receiver has to answer, in milliseconds (a 2xx within it is success).
    pub timeout_ms: u64,
    /// The first retry's delay in milliseconds; it doubles per attempt (at most an hour),
    /// with ±20 % jitter.
    pub retry_base_ms: u64,
    /// After this many seconds of failed attempts a delivery is given up and the owner
    /// notified.
    pub give_up_after_s: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            poll_interval_ms: 500,
            batch: 50,
            concurrency: 16,
            timeout_ms: 10_000,
            retry_base_ms: 5_000,
            give_up_after_s: 86_400,
        }
    }
}

/// The HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Where to listen.
    pub listen: String,
    /// Request bodies larger than this are refused with 413.
    pub body_limit_bytes: usize,
    /// A request taking longer than this is cut off, in milliseconds.
    pub request_timeout_ms: u64,
    /// How long a graceful shutdown waits for requests in flight, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// Serve HTTPS with this certificate chain (PEM file), for deployments without a proxy
    /// in front; with `tls_key`.
    pub tls_cert: Option<String>,
    /// The certificate's private key (PEM file).
    pub tls_key: Option<String>,
    /// Proxies (CIDRs or addresses) whose `X-Forwarded-For` names the client, for the audit
    /// trail's client address and per-address rate limits; from anyone else it is ignored.
    pub trusted_proxies: Vec<String>,
    /// Serve `/metrics` on this address alone (a port only the scraper reaches); the public
    /// port then answers `404` there.
    pub metrics_listen: Option<String>,
    /// Ask for this bearer token on `/metrics` (wherever it is served).
    pub metrics_token: Option<SecretString>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            body_limit_bytes: 64 * 1024,
            request_timeout_ms: 30_000,
            shutdown_grace_ms: 10_000,
            tls_cert: None,
            tls_key: None,
            trusted_proxies: Vec::new(),
            metrics_listen: None,
            metrics_token: None,
        }
    }
}

/// PostgreSQL. Its `Debug` shows the URL with the password redacted.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// The connection URL (may hold a password: never logged).
    pub url: String,
    /// Connections kept open.
    pub min_connections: u32,
    /// Connections at most.
    pub max_connections: u32,
    /// Connect timeout, in milliseconds.
    pub connect_timeout_ms: u64,
    /// How long a request waits for a free connection, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// Idle connections are closed after this, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Server-side statement timeout, in milliseconds; below the request timeout, so a slow
    /// statement is answered `timeout` by the database before the request is abandoned.
    pub statement_timeout_ms: u64,
    /// Server-side lock timeout, in milliseconds: a posting waiting longer for a wallet that
    /// other work holds is answered `wallet_busy` instead of holding a connection. 0 waits
    /// for ever.
    pub lock_timeout_ms: u64,
    /// Statements slower than this are logged, in milliseconds.
    pub slow_statement_ms: u64,
    /// `serve` applies pending migrations at start.
    pub auto_migrate: bool,
    /// `serve` and `migrate` create the database when it does not exist.
    pub create_database: bool,
    /// The URL migrations (`migrate`, `serve`'s auto-migration, `db roles`) connect with: the
    /// schema's owner. None uses `url`. With `url` naming the application role and
    /// `auto_migrate = false`, `serve` never holds a credential that can change the schema.
    pub migration_url: Option<String>,
    /// The application role `waiaas db roles` creates and grants to.
    pub app_role: String,
    /// Row-level security on the tenant tables, turned on (or off) by `waiaas db roles` and
    /// `migrate up`: the application role then sees only the rows of the tenant each
    /// connection names, which the service does whenever the database asks for it. Off by
    /// default: it costs 10-15 % of transfer throughput (docs/operations.md).
    pub row_level_security: bool,
    /// TLS to PostgreSQL, as libpq's `sslmode`: `disable`, `prefer`, `require`, `verify-ca`,
    /// `verify-full`. None leaves it to the URL, else `prefer`.
    pub sslmode: Option<String>,
    /// The CA certificates (PEM file) the server's certificate must chain to.
    pub sslrootcert: Option<String>,
    /// A client certificate (PEM file), for servers that ask for one.
    pub sslcert: Option<String>,
    /// The client certificate's key (PEM file).
    pub sslkey: Option<String>,
    /// Streaming replicas of the primary (`url`'s database on each), for the reads that may
    /// be served from one: transaction and audit listings. A replica is used only when it
    /// has replayed the caller's `WAIaaS-Consistency-Token` and this instance's latest write;
    /// otherwise the read goes to the primary. Empty: every read from the primary, and no
    /// tokens.
    pub replica_urls: Vec<String>,
    /// What stands between the service and PostgreSQL: `none` (PostgreSQL itself, or
    /// PgBouncer in session mode) or `pgbouncer-transaction` (PgBouncer in transaction mode:
    /// unnamed statements in one round trip each, timeouts set per transaction, no role
    /// under row-level security).
    pub pooler: Pooler,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        let pg = PgSettings::default();
        Self {
            url: pg.url,
            min_connections: pg.min_connections,
            max_connections: pg.max_connections,
            connect_timeout_ms: pg.connect_timeout_ms,
            acquire_timeout_ms: pg.acquire_timeout_ms,
            idle_timeout_ms: pg.idle_timeout_ms,
            statement_timeout_ms: pg.statement_timeout_ms,
            lock_timeout_ms: pg.lock_timeout_ms,
            slow_statement_ms: pg.slow_statement_ms,
            auto_migrate: true,
            create_database: true,
            migration_url: None,
            app_role: "waiaas_app".to_owned(),
            row_level_security: false,
            sslmode: None,
            sslrootcert: None,
            sslcert: None,
            sslkey: None,
            replica_urls: Vec::new(),
            pooler: pg.pooler,
        }
    }
}

impl DatabaseSettings {
    /// The settings of the pool migrations run on: `migration_url`, or `url`.
    #[must_use]
    pub fn migration_pg(&self) -> PgSettings {
        PgSettings {
            url: self
                .migration_url
                .clone()
                .unwrap_or_else(|| self.url.clone()),
            ..self.pg()
        }
    }

    /// The pool settings.
    #[must_use]
    pub fn pg(&self) -> PgSettings {
        PgSettings {
            url: self.url.clone(),
            min_connections: self.min_connections,
            max_connections: self.max_connections,
            connect_timeout_ms: self.connect_timeout_ms,
            acquire_timeout_ms: self.acquire_timeout_ms,
            idle_timeout_ms: self.idle_timeout_ms,
            statement_timeout_ms: self.statement_timeout_ms,
            lock_timeout_ms: self.lock_timeout_ms,
            slow_statement_ms: self.slow_statement_ms,
            sslmode: self.sslmode.clone(),
            sslrootcert: self.sslrootcert.clone(),
            sslcert: self.sslcert.clone(),
            sslkey: self.sslkey.clone(),
            pooler: self.pooler,
        }
    }
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("pool", &self.pg())
            .field("auto_migrate", &self.auto_migrate)
            .field("create_database", &self.create_database)
            .field(
                "migration_url",
                &self
                    .migration_url
                    .as_deref()
                    .map(waiaas_postgres::redact_url),
            )
            .field("app_role", &self.app_role)
            .field("row_level_security", &self.row_level_security)
            .field(
                "replica_urls",
                &self
                    .replica_urls
                    .iter()
                    .map(|u| waiaas_postgres::redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("pooler", &self.pooler)
            .finish()
    }
}

/// How Redis is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisMode {
    /// One server.
    #[default]
    Standalone,
    /// Redis Cluster: `nodes` are seed nodes.
    Cluster,
    /// Sentinel: `nodes` are sentinels, `sentinel_service` the monitored name.
    Sentinel,
}

/// Redis. Its `Debug` shows the URL with the password redacted.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// Use Redis at all; without it the service runs on PostgreSQL and in-process fallbacks.
    pub enabled: bool,
    /// Standalone URL (may hold a password: never logged).
    pub url: String,
    /// Deployment.
    pub mode: RedisMode,
    /// `host:port` of cluster seeds or sentinels.
    pub nodes: Vec<String>,
    /// The service name sentinels monitor.
    pub sentinel_service: Option<String>,
    /// A password, used instead of any in the URL (and the only one in cluster and sentinel
    /// modes).
    pub password: Option<SecretString>,
    /// A prefix for every key and channel (isolates tests or tenants of one Redis).
    pub key_prefix: String,
    /// Per-command timeout, in milliseconds.
    pub command_timeout_ms: u64,
    /// Connect timeout, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Longest pause between reconnect attempts, in milliseconds.
    pub reconnect_max_delay_ms: u64,
    /// TLS to every node: implied by a `rediss://` URL; set it for cluster and sentinel
    /// modes (whose nodes are `host:port`).
    pub tls: bool,
    /// The CA certificates (PEM file) Redis's certificate must chain to; none uses the
    /// system's. Setting it turns TLS on.
    pub tls_ca_file: Option<String>,
    /// A client certificate (PEM file), for servers with `tls-auth-clients yes`.
    pub tls_cert_file: Option<String>,
    /// The client certificate's key (PEM file).
    pub tls_key_file: Option<String>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            url: "redis://127.0.0.1:6379".to_owned(),
            mode: RedisMode::Standalone,
            nodes: Vec::new(),
            sentinel_service: None,
            password: None,
            key_prefix: String::new(),
            command_timeout_ms: 100,
            connect_timeout_ms: 1_000,
            reconnect_max_delay_ms: 2_000,
            tls: false,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl RedisSettings {
    /// TLS to Redis, when asked for (`tls`, a `rediss://` URL in standalone mode, or a CA or
    /// client certificate set).
    #[must_use]
    pub fn tls_settings(&self) -> Option<waiaas_redis::RedisTls> {
        let asked = self.tls
            || self.tls_ca_file.is_some()
            || self.tls_cert_file.is_some()
            || (self.mode == RedisMode::Standalone && self.url.starts_with("rediss://"));
        asked.then(|| waiaas_redis::RedisTls {
            ca_file: self.tls_ca_file.as_ref().map(Into::into),
            cert_file: self.tls_cert_file.as_ref().map(Into::into),
            key_file: self.tls_key_file.as_ref().map(Into::into),
        })
    }

    /// Checks the TLS files go together.
    ///
    /// # Errors
    /// A client certificate without its key, or a key without its certificate.
    pub fn tls_files(&self) -> anyhow::Result<()> {
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            anyhow::bail!(
                "settings are invalid: redis.tls_cert_file and redis.tls_key_file go together: set both or neither"
            );
        }
        Ok(())
    }
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("enabled", &self.enabled)
            .field("url", &waiaas_postgres::redact_url(&self.url))
            .field("mode", &self.mode)
            .field("nodes", &self.nodes)
            .field("sentinel_service", &self.sentinel_service)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout_ms", &self.command_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("reconnect_max_delay_ms", &self.reconnect_max_delay_ms)
            .field("tls", &self.tls)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .finish()
    }
}

/// Cache TTLs and resilience.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Balance entries, seconds.
    pub balance_ttl_s: u64,
    /// Policy entries, seconds.
    pub policy_ttl_s: u64,
    /// Session entries, seconds (never beyond the session's expiry).
    pub session_ttl_s: u64,
    /// Spend summaries, seconds.
    pub summary_ttl_s: u64,
    /// Unread notification counts, seconds.
    pub unread_ttl_s: u64,
    /// Wallet ownership and asset metadata (immutable), seconds.
    pub immutable_ttl_s: u64,
    /// Owners' home snapshots (`GET /v1/home`), seconds.
    pub home_ttl_s: u64,
    /// TTL jitter, percent (spreads expiries so they do not all fall at once).
    pub jitter_percent: u8,
    /// Entries the in-process L1 tier holds.
    pub l1_capacity: u64,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before a probe, in milliseconds.
    pub breaker_open_ms: u64,
    /// How long an instance's lease to serve cached reads lasts, in milliseconds.
    pub lease_ms: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            balance_ttl_s: 10,
            policy_ttl_s: 300,
            session_ttl_s: 3600,
            summary_ttl_s: 600,
            unread_ttl_s: 600,
            immutable_ttl_s: 3600,
            home_ttl_s: 60,
            jitter_percent: 10,
            l1_capacity: 100_000,
            breaker_failures: 3,
            breaker_open_ms: 1_000,
            lease_ms: 2_000,
        }
    }
}

/// Credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// The token that may create owners (`POST /v1/owners`); none disables that endpoint.
    pub bootstrap_token: Option<SecretString>,
    /// How long a session lives, seconds.
    pub session_ttl_s: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            bootstrap_token: None,
            session_ttl_s: 3600,
        }
    }
}

/// Per-principal request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Whether requests are limited.
    pub enabled: bool,
    /// Average requests per second per principal.
    pub per_second: f64,
    /// Requests allowed at once.
    pub burst: u32,
    /// Failed authentications allowed per client address and second; beyond them (and the
    /// burst) the address is answered 429 before any credential lookup.
    pub auth_failures_per_second: f64,
    /// Failed authentications allowed at once per client address.
    pub auth_failures_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            per_second: 100.0,
            burst: 200,
            auth_failures_per_second: 5.0,
            auth_failures_burst: 20,
        }
    }
}

/// Logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
    /// `text` or `json`.
    pub format: String,
    /// Where OpenTelemetry traces go over OTLP/HTTP (`http://collector:4318`; the exporter
    /// posts to `/v1/traces` under it); empty: no traces are kept or sent.
    pub otlp_endpoint: String,
    /// Which spans are exported: `target=level` pairs (`tracing`'s `Targets` syntax). By
    /// default the service's own, with every Redis call (level `trace`) and nothing of the
    /// libraries (the exporter's own HTTP client among them).
    pub otlp_filter: String,
    /// The `service.name` the spans carry.
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            filter: "info,sqlx=warn,fred=error".to_owned(),
            format: "text".to_owned(),
            otlp_endpoint: String::new(),
            otlp_filter: "waiaas=info,waiaas_app=info,waiaas_http=info,waiaas_cache=info,\
waiaas_postgres=info,waiaas_redis=trace,waiaas_domain=info"
                .to_owned(),
            service_name: "waiaas".to_owned(),
        }
    }
}

impl Settings {
    /// Loads the layers from `config_dir` (normally `config/`) and the environment.
    ///
    /// # Errors
    /// A file that does not parse, or a value of the wrong type, named in the message.
    pub fn load(config_dir: &Path) -> anyhow::Result<Self> {
        Self::load_with_env(config_dir, std::env::vars())
    }

    /// Loads the layers from `config_dir` and the given environment variables. Any setting
    /// can also come from a file named by `<variable>_FILE` (`WAIAAS__DATABASE__URL_FILE`,
    /// `WAIAAS__REDIS__PASSWORD_FILE`, …: Docker's and Kubernetes' secrets), its content
    /// with the trailing line break removed.
    ///
    /// # Errors
    /// A file that does not parse or cannot be read, a variable given both ways, or a value
    /// of the wrong type, named in the message (never the value).
    pub fn load_with_env(
        config_dir: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let env = std::env::var("WAIAAS_ENV").unwrap_or_else(|_| "local".to_owned());
        let file = |name: &str| config::File::from(config_dir.join(name)).required(false);
        let mut plain = config::Map::new();
        let mut from_files = Vec::new();
        for (name, value) in vars {
            if !name.starts_with("WAIAAS__") {
                continue;
            }
            match name.strip_suffix("_FILE") {
                Some(target) => from_files.push((name.clone(), target.to_owned(), value)),
                None => {
                    plain.insert(name, value);
                }
            }
        }
        let mut builder = config::Config::builder()
            .add_source(file("default"))
            .add_source(file(&env))
            .add_source(
                config::Environment::with_prefix("WAIAAS")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("redis.nodes")
                    .with_list_parse_key("server.trusted_proxies")
                    .try_parsing(true)
                    .source(Some(plain.clone())),
            );
        for (name, target, path) in from_files {
            if plain.contains_key(&target) {
                anyhow::bail!("settings are invalid: both {target} and {name} are set");
            }
            let content = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {name} (the file {path})"))?;
            let key = target["WAIAAS__".len()..].to_lowercase().replace("__", ".");
            builder = builder
                .set_override(key, content.trim_end_matches(['\n', '\r']).to_owned())
                .context("reading settings")?;
        }
        builder
            .build()
            .context("reading settings")?
            .try_deserialize::<Self>()
            .context("settings are invalid")?
            .validated()
    }

    /// Checks what no single value can say alone.
    ///
    /// # Errors
    /// A statement timeout that is not below the request timeout: the same slow request
    /// would then be answered differently depending on which timer fired first.
    pub fn validated(self) -> anyhow::Result<Self> {
        let (statement, request) = (
            self.database.statement_timeout_ms,
            self.server.request_timeout_ms,
        );
        if self.holds.sweep_interval_ms == 0 || self.holds.sweep_batch == 0 {
            anyhow::bail!(
                "settings are invalid: holds.sweep_interval_ms and holds.sweep_batch must be above 0"
            );
        }
        if self.posting.workers == 0 || self.posting.batch_size == 0 {
            anyhow::bail!(
                "settings are invalid: posting.workers and posting.batch_size must be above 0"
            );
        }
        if let Err(e) = self.database.pg().ssl_mode() {
            anyhow::bail!("settings are invalid: {e}");
        }
        self.redis.tls_files()?;
        if let Err(e) = crate::telemetry::validate(&self.telemetry) {
            anyhow::bail!("settings are invalid: {e:#}");
        }
        if let Err(e) = waiaas_http::TrustedProxies::parse(&self.server.trusted_proxies) {
            anyhow::bail!("settings are invalid: {e}");
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            anyhow::bail!(
                "settings are invalid: server.tls_cert and server.tls_key go together: set both or neither"
            );
        }
        if statement == 0 || statement >= request {
            anyhow::bail!(
                "settings are invalid: database.statement_timeout_ms ({statement}) must be above 0 and below server.request_timeout_ms ({request})"
            );
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_settings_type_prints_a_password() {
        let mut s = Settings::default();
        s.database.url = "postgres://app:pg-secret@db:5432/waiaas".to_owned();
        s.database.migration_url =
            Some("postgres://owner:owner-secret@db:5432/waiaas?password=query-secret".to_owned());
        s.redis.url = "redis://:redis-secret@cache:6379".to_owned();
        s.redis.password = Some(SecretString::from("other-secret"));
        s.auth.bootstrap_token = Some(SecretString::from("boot-secret"));
        s.server.metrics_token = Some(SecretString::from("metrics-secret"));
        let shown = format!("{s:?} {:?} {:?}", s.database, s.redis);
        for secret in [
            "pg-secret",
            "owner-secret",
            "query-secret",
            "redis-secret",
            "other-secret",
            "boot-secret",
            "metrics-secret",
        ] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
    }

    #[test]
    fn secrets_come_from_files_named_by_file_variables() {
        let dir = std::env::temp_dir().join(format!("waiaas-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = dir.join("url");
        std::fs::write(&url, "postgres://app:file-secret@db:5432/waiaas\n").unwrap();
        let password = dir.join("password");
        std::fs::write(&password, "redis-file-secret").unwrap();
        let var = |k: &str, v: &std::path::Path| (k.to_owned(), v.display().to_string());
        let s = Settings::load_with_env(
            &dir,
            [
                var("WAIAAS__DATABASE__URL_FILE", &url),
                var("WAIAAS__REDIS__PASSWORD_FILE", &password),
                (
                    "WAIAAS__SERVER__LISTEN".to_owned(),
                    "0.0.0.0:9000".to_owned(),
                ),
                (
                    "WAIAAS__SERVER__TRUSTED_PROXIES".to_owned(),
                    "10.0.0.0/8,192.168.0.0/16".to_owned(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(s.server.trusted_proxies, ["10.0.0.0/8", "192.168.0.0/16"]);
        assert_eq!(s.database.url, "postgres://app:file-secret@db:5432/waiaas");
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(s.redis.password.as_ref().unwrap()),
            "redis-file-secret"
        );
        assert_eq!(s.server.listen, "0.0.0.0:9000");
        assert!(!format!("{s:?}").contains("file-secret"));

        let both = Settings::load_with_env(
            &dir,
            [
                var("WAIAAS__DATABASE__URL_FILE", &url),
                (
                    "WAIAAS__DATABASE__URL".to_owned(),
                    "postgres://x".to_owned(),
                ),
            ],
        )
        .unwrap_err();
        assert!(format!("{both:#}").contains("both"), "{both:#}");
        let missing = Settings::load_with_env(
            &dir,
            [var("WAIAAS__AUTH__BOOTSTRAP_TOKEN_FILE", &dir.join("none"))],
        )
        .unwrap_err();
        assert!(
            format!("{missing:#}").contains("WAIAAS__AUTH__BOOTSTRAP_TOKEN_FILE"),
            "{missing:#}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_statement_timeout_must_be_below_the_request_timeout() {
        let mut s = Settings::default();
        assert!(s.clone().validated().is_ok());
        s.database.statement_timeout_ms = s.server.request_timeout_ms;
        let e = s.validated().unwrap_err().to_string();
        assert!(e.contains("statement_timeout_ms"), "{e}");
    }
}
