//! The composition root: builds the services on PostgreSQL, with Redis (and its in-process
//! fallbacks) when enabled.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret as _;
use uuid::Uuid;
use waiaas_cache::failover::{FailoverEventBus, FailoverLocks, FailoverRateLimiter};
use waiaas_cache::{Cache, CacheConfig, LocalEventBus, LocalRateLimiter, Relay, RelayConfig, Ttls};
use waiaas_domain::ports::{EventBus, LockManager, RateLimiter, SystemClock};
use waiaas_domain::{Ports, ServiceSettings, Services};
use waiaas_postgres::{AdvisoryLocks, Postgres};
use waiaas_redis::{Redis, RedisConfig, RedisMode};

use crate::database;
use crate::settings::{RedisMode as ModeSetting, Settings};

/// One running instance of the service: its pools, cache and services.
#[derive(Clone)]
pub struct App {
    /// The settings it was built from.
    pub settings: Settings,
    /// The use cases.
    pub services: Services,
    /// The PostgreSQL pool.
    pub db: DatabaseConnection,
    /// The Redis client, when Redis is enabled.
    pub redis: Option<Redis>,
    /// The cache, when Redis is enabled.
    pub cache: Option<Arc<Cache>>,
    /// The rate limiter (Redis with an in-process fallback, or in process).
    pub rate_limiter: Arc<dyn RateLimiter>,
    /// Coordination locks (Redis with a PostgreSQL fallback, or PostgreSQL).
    pub locks: Arc<dyn LockManager>,
    /// The event bus (Redis pub/sub with an in-process fallback, or in process).
    pub events: Arc<dyn EventBus>,
    /// This instance's identity (its cache lease).
    pub instance: Uuid,
    /// Background work (the hold expiry sweeper), stopped when the last clone goes.
    pub background: Arc<Background>,
    /// The open event streams, bounded, ended at once on shutdown; agents' presence.
    pub streams: waiaas_http::Streams,
    /// Consistency tokens, when listings are read from replicas (`database.replica_urls`).
    pub consistency: Option<Arc<dyn waiaas_http::Consistency>>,
}

/// Consistency tokens from the primary's WAL position.
struct WalTokens(Arc<Postgres>);

#[async_trait::async_trait]
impl waiaas_http::Consistency for WalTokens {
    async fn after_write(&self) -> Option<String> {
        match self.0.write_position().await {
            Ok(position) => Some(waiaas_postgres::format_position(position)),
            Err(e) => {
                tracing::warn!(error = %e, "No consistency token: the primary's WAL position was not read");
                None
            }
        }
    }

    fn parse(&self, token: &str) -> Option<u64> {
        waiaas_postgres::parse_position(token)
    }
}

/// What the background jobs run on.
struct Jobs {
    events: Arc<dyn waiaas_domain::ports::EventLog>,
    locks: Arc<dyn LockManager>,
    deliveries: Arc<dyn waiaas_domain::ports::DeliveryQueue>,
    db: sea_orm::DatabaseConnection,
    pg: Arc<Postgres>,
}

/// Background tasks of an instance: aborted on shutdown, or when dropped.
#[derive(Debug, Default)]
pub struct Background(std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>);

impl Background {
    /// Starts the instance's background tasks.
    fn start(
        services: &Services,
        relay: &Arc<Relay>,
        jobs: Jobs,
        settings: &Settings,
    ) -> anyhow::Result<Arc<Self>> {
        let mut tasks = vec![
            crate::holds::spawn_sweeper(services.clone(), &settings.holds),
            tokio::spawn(relay.clone().run()),
            crate::webhooks::spawn(jobs.deliveries, &settings.webhooks)
                .context("starting the webhook workers")?,
        ];
        tasks.extend(crate::retention::spawn(
            jobs.events,
            jobs.locks,
            &settings.events,
        ));
        tasks.push(crate::metrics::spawn_gauges(jobs.db.clone(), jobs.pg));
        tasks.extend(crate::sealer::spawn(jobs.db, &settings.ledger));
        Ok(Arc::new(Self(std::sync::Mutex::new(tasks))))
    }

    /// Stops every task.
    pub fn stop(&self) {
        let tasks = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            task.abort();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("instance", &self.instance)
            .field("redis", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

/// The Redis client settings from the service's settings.
#[must_use]
pub fn redis_config(settings: &Settings) -> RedisConfig {
    let r = &settings.redis;
    let mode = match r.mode {
        ModeSetting::Standalone => RedisMode::Standalone { url: r.url.clone() },
        ModeSetting::Cluster => RedisMode::Cluster {
            nodes: r.nodes.clone(),
        },
        ModeSetting::Sentinel => RedisMode::Sentinel {
            nodes: r.nodes.clone(),
            service_name: r
                .sentinel_service
                .clone()
                .unwrap_or_else(|| "mymaster".to_owned()),
        },
    };
    RedisConfig {
        mode,
        password: r.password.as_ref().map(|p| p.expose_secret().to_owned()),
        key_prefix: r.key_prefix.clone(),
        command_timeout: Duration::from_millis(r.command_timeout_ms),
        connect_timeout: Duration::from_millis(r.connect_timeout_ms),
        reconnect_max_delay: Duration::from_millis(r.reconnect_max_delay_ms),
        tls: r.tls_settings(),
    }
}

fn cache_config(settings: &Settings, instance: Uuid) -> CacheConfig {
    let c = &settings.cache;
    CacheConfig {
        ttls: Ttls {
            balance: Duration::from_secs(c.balance_ttl_s),
            policy: Duration::from_secs(c.policy_ttl_s),
            session: Duration::from_secs(c.session_ttl_s),
            summary: Duration::from_secs(c.summary_ttl_s),
            unread: Duration::from_secs(c.unread_ttl_s),
            immutable: Duration::from_secs(c.immutable_ttl_s),
            home: Duration::from_secs(c.home_ttl_s),
            jitter_percent: c.jitter_percent,
        },
        l1_capacity: c.l1_capacity,
        breaker_failures: c.breaker_failures,
        breaker_open: Duration::from_millis(c.breaker_open_ms),
        call_timeout: Duration::from_millis(settings.redis.command_timeout_ms),
        lease: Duration::from_millis(c.lease_ms),
        instance,
    }
}

/// Builds an instance: connects to PostgreSQL (which must be up) and Redis (which may be
/// down: the instance then starts degraded and recovers when it comes back).
///
/// # Errors
/// When PostgreSQL cannot be reached.
pub async fn build(settings: &Settings) -> anyhow::Result<App> {
    let db = database::connect(&settings.database.pg()).await?;
    build_on(settings, db).await
}

/// As [`build`], on an existing pool.
///
/// # Errors
/// When the Redis client cannot be configured (bad URL).
pub async fn build_on(settings: &Settings, db: DatabaseConnection) -> anyhow::Result<App> {
    // The recorder first: gauges set while the instance is built (the breakers' state) are
    // lost if no recorder exists yet.
    let _ = crate::metrics::renderer();
    let instance = Uuid::new_v4();
    let mut replicas = Vec::new();
    for url in &settings.database.replica_urls {
        let pool = waiaas_postgres::connect_replica(&waiaas_postgres::PgSettings {
            url: url.clone(),
            ..settings.database.pg()
        })
        .await
        .with_context(|| {
            format!(
                "configuring read replica {}",
                waiaas_postgres::redact_url(url)
            )
        })?;
        replicas.push(pool);
    }
    let pg = Arc::new(
        Postgres::new(db.clone())
            .with_batching(settings.posting.batching())
            .with_replicas(replicas),
    );
    let consistency: Option<Arc<dyn waiaas_http::Consistency>> = pg
        .has_replicas()
        .then(|| Arc::new(WalTokens(pg.clone())) as Arc<dyn waiaas_http::Consistency>);
    let pg_locks: Arc<dyn LockManager> = Arc::new(AdvisoryLocks::new(db.clone()));
    let failures = settings.cache.breaker_failures;
    let open_for = Duration::from_millis(settings.cache.breaker_open_ms);
    let timeout = Duration::from_millis(settings.redis.command_timeout_ms);

    let relay_config = RelayConfig {
        poll: Duration::from_millis(settings.events.poll_interval_ms.max(1)),
        batch: settings.events.batch.max(1),
        buffer: settings.events.stream_buffer.max(1),
        gather: Duration::from_millis(settings.events.gather_ms),
    };
    let local_bus: Arc<dyn EventBus> = Arc::new(LocalEventBus::default());
    let local_relay = Arc::new(Relay::new(pg.clone(), local_bus.clone(), relay_config));
    let base = Ports {
        owners: pg.clone(),
        agents: pg.clone(),
        wallets: pg.clone(),
        policies: pg.clone(),
        transactions: pg.clone(),
        sessions: pg.clone(),
        audit: pg.clone(),
        notifications: pg.clone(),
        feed: local_relay.clone(),
        webhooks: pg.clone(),
        clock: Arc::new(SystemClock),
    };

    let stream_limits = waiaas_http::StreamLimits {
        per_principal: settings.events.max_streams_per_principal.max(1),
        per_instance: settings.events.max_streams_per_instance.max(1),
    };
    let service_settings = ServiceSettings {
        session_ttl: Duration::from_secs(settings.auth.session_ttl_s),
        webhook_private_networks: settings.webhooks.allow_private_networks,
    };
    if !settings.redis.enabled {
        tracing::info!("Redis disabled: running on PostgreSQL with in-process limits and events");
        let events = local_bus;
        let services = Services::new(base, service_settings);
        return Ok(App {
            settings: settings.clone(),
            background: Background::start(
                &services,
                &local_relay,
                Jobs {
                    events: pg.clone(),
                    locks: pg_locks.clone(),
                    deliveries: pg.clone(),
                    db: db.clone(),
                    pg: pg.clone(),
                },
                settings,
            )?,
            services,
            db,
            redis: None,
            cache: None,
            rate_limiter: Arc::new(LocalRateLimiter::new()),
            locks: pg_locks,
            events,
            instance,
            streams: waiaas_http::Streams::new(stream_limits, None),
            consistency,
        });
    }

    let redis = Redis::connect(&redis_config(settings))
        .await
        .context("configuring Redis")?;
    let shared = Arc::new(redis.clone());
    let events: Arc<dyn EventBus> = Arc::new(FailoverEventBus::new(
        shared.clone(),
        failures,
        open_for,
        timeout,
    ));
    let cache = Arc::new(Cache::new(
        shared.clone(),
        pg.clone(),
        events.clone(),
        cache_config(settings, instance),
    ));
    cache.start();
    let rate_limiter: Arc<dyn RateLimiter> = Arc::new(FailoverRateLimiter::new(
        shared.clone(),
        failures,
        open_for,
        timeout,
    ));
    let locks: Arc<dyn LockManager> = Arc::new(FailoverLocks::new(
        shared, pg_locks, failures, open_for, timeout,
    ));
    let relay = Arc::new(Relay::new(pg.clone(), events.clone(), relay_config));
    let ports = waiaas_cache::cached::wrap(
        Ports {
            feed: relay.clone(),
            ..base
        },
        &cache,
    );
    let services = Services::new(ports, service_settings);
    Ok(App {
        settings: settings.clone(),
        background: Background::start(
            &services,
            &relay,
            Jobs {
                events: pg.clone(),
                locks: locks.clone(),
                deliveries: Arc::new(waiaas_cache::cached::CachedDeliveries::new(
                    pg.clone(),
                    cache.clone(),
                )),
                db: db.clone(),
                pg: pg.clone(),
            },
            settings,
        )?,
        services,
        db,
        streams: waiaas_http::Streams::new(stream_limits, Some(Arc::new(redis.clone()))),
        redis: Some(redis),
        cache: Some(cache),
        rate_limiter,
        locks,
        events,
        instance,
        consistency,
    })
}

impl App {
    /// Stops background work, gives up the cache lease and closes connections.
    pub async fn shutdown(&self) {
        self.streams.close_all();
        self.background.stop();
        if let Some(cache) = &self.cache {
            cache.shutdown().await;
        }
        if let Some(redis) = &self.redis {
            let _ = redis.quit().await;
        }
        let _ = self.db.clone().close().await;
    }
}
