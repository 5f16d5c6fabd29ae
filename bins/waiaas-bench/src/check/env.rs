//! The checker's world: a private PostgreSQL and a private Redis (append-only file on, so a
//! restart reloads older data) that it may crash, two instances of the service over them
//! (instance A reaches Redis through a proxy that can cut it off), one owner with an agent
//! and its wallets, and a maintenance connection for faults and verification. With
//! `--pgbouncer`, the instances reach PostgreSQL through a PgBouncer in transaction mode
//! (fewer server connections than the instances' pools hold), which the faults reach too.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, Statement};
use waiaas_app::{App, Settings};
use waiaas_domain::{AgentId, OwnerId, PolicyRules, WalletId};
use waiaas_testkit::{Fixture, PgBouncer, PgServer, RedisServer, TcpProxy, unique_prefix};

/// The lock timeout of the instances: the checker holds wallet locks longer than this.
pub(super) const LOCK_TIMEOUT: Duration = Duration::from_millis(300);
/// The instances' cache lease.
pub(super) const LEASE: Duration = Duration::from_millis(1_000);
/// A destination every policy blocks, so denials (and notifications) happen.
pub(super) const BLOCKED: &str = "blocked-shop";

/// Everything the checker runs against.
pub(super) struct Env {
    pub pg: tokio::sync::Mutex<PgServer>,
    /// What the instances connect to: the private server's database, or the PgBouncer in
    /// front of it.
    pub instance_url: String,
    /// With `--pgbouncer`: running for as long as the checker holds it.
    _bouncer: Option<PgBouncer>,
    pub admin: DatabaseConnection,
    pub redis: tokio::sync::Mutex<RedisServer>,
    pub redis_port: u16,
    /// Instance A's way to Redis.
    pub proxy: TcpProxy,
    pub prefix: String,
    pub instances: RwLock<Vec<App>>,
    pub owner: OwnerId,
    pub agent: AgentId,
    pub agent_key: String,
    pub wallets: Vec<WalletId>,
    /// One mandate per wallet (same order): any payee, 20 per use, many uses.
    pub mandates: Vec<waiaas_domain::MandateId>,
}

impl Env {
    pub(super) async fn start(wallets: usize, initial: i64) -> anyhow::Result<Self> {
        let pg = PgServer::start(&["max_connections=80"]).await?;
        let db_url = pg.migrated_database("waiaas").await?;
        let redis =
            RedisServer::start_with_args(&["--appendonly", "yes", "--appendfsync", "everysec"])
                .await?;
        let redis_port = redis.port();
        let proxy = TcpProxy::start(format!("127.0.0.1:{redis_port}").parse()?).await?;
        // Tested before every use: it outlives the server's restarts and terminations.
        let mut opts = sea_orm::ConnectOptions::new(db_url.clone());
        opts.max_connections(4)
            .min_connections(0)
            .test_before_acquire(true)
            .sqlx_logging(false);
        let admin = sea_orm::Database::connect(opts).await?;
        // With `--app-role`, the instances serve as a role under row-level security.
        crate::env::grant_app_role(&admin, "waiaas").await?;
        // With `--pgbouncer`, ten server connections for the two instances' sixteen.
        let bouncer = if crate::env::pgbouncer() {
            Some(PgBouncer::start(&db_url, 10).await?)
        } else {
            None
        };
        let instance_url = bouncer
            .as_ref()
            .map_or_else(|| db_url.clone(), |b| b.url(&db_url));
        let prefix = unique_prefix();
        let a = build(
            &instance_url,
            &format!("redis://127.0.0.1:{}", proxy.port()),
            &prefix,
        )
        .await?;
        let b = build(
            &instance_url,
            &format!("redis://127.0.0.1:{redis_port}"),
            &prefix,
        )
        .await?;
        let world = Fixture::world(&a.services).await;
        let (_, key) = a
            .services
            .create_agent_key(world.owner_id, world.agent_id, &world.owner_ctx())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // Budgets at the agent's and the owner's level that never bind: every posting locks
        // and reads them, under every fault.
        let loose: waiaas_domain::policy::Budgets = [(
            waiaas_domain::AssetCode::parse("USD")?,
            waiaas_domain::BudgetLimits {
                max_per_transaction: waiaas_domain::Money::new(1_000_000).ok(),
                daily_limit: waiaas_domain::Money::new(1_000_000_000_000).ok(),
                monthly_limit: waiaas_domain::Money::new(1_000_000_000_000).ok(),
            },
        )]
        .into();
        a.services
            .set_agent_budget(
                &world.owner(),
                world.agent_id,
                loose.clone(),
                &world.owner_ctx(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        a.services
            .set_owner_budget(&world.owner(), loose, &world.owner_ctx())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut ids = Vec::new();
        let mut mandates = Vec::new();
        for _ in 0..wallets {
            let w = world.wallet("USD", initial).await.id;
            world
                .set_rules(
                    w,
                    PolicyRules {
                        blocked_destinations: [waiaas_domain::Counterparty::parse(BLOCKED)?]
                            .into_iter()
                            .collect(),
                        ..Default::default()
                    },
                )
                .await;
            let m = a
                .services
                .create_mandate(
                    &world.owner(),
                    waiaas_domain::services::MandateRequest {
                        wallet_id: w,
                        max_amount: 20,
                        total_amount: None,
                        max_uses: Some(10_000),
                        to_wallet_id: None,
                        destination: None,
                        expires_at: chrono::Utc::now() + chrono::Duration::hours(2),
                    },
                    &world.owner_ctx(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            mandates.push(m.id);
            ids.push(w);
        }
        Ok(Self {
            pg: tokio::sync::Mutex::new(pg),
            instance_url,
            _bouncer: bouncer,
            admin,
            redis: tokio::sync::Mutex::new(redis),
            redis_port,
            proxy,
            prefix,
            instances: RwLock::new(vec![a, b]),
            owner: world.owner_id,
            agent: world.agent_id,
            agent_key: key.expose().to_owned(),
            wallets: ids,
            mandates,
        })
    }

    /// Instance `i` (0: A, behind the proxy; 1: B).
    pub(super) fn instance(&self, i: usize) -> App {
        self.instances
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)[i % 2]
            .clone()
    }

    /// Crashes instance `i` (its cache lease is left live in PostgreSQL, as a killed process
    /// leaves it) and starts a new one in its place.
    pub(super) async fn crash_and_replace(&self, i: usize) -> anyhow::Result<()> {
        let url = if i == 0 {
            format!("redis://127.0.0.1:{}", self.proxy.port())
        } else {
            format!("redis://127.0.0.1:{}", self.redis_port)
        };
        let fresh = build(&self.instance_url, &url, &self.prefix).await?;
        let old = std::mem::replace(
            &mut self
                .instances
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)[i],
            fresh,
        );
        // No `shutdown`: the lease is not released. Its background tasks end with the last
        // reference; its Redis connections are closed so they do not linger.
        if let Some(r) = &old.redis {
            let _ = r.quit().await;
        }
        drop(old);
        Ok(())
    }

    /// Runs a statement on the checker's own connection.
    pub(super) async fn exec(&self, sql: &str) -> anyhow::Result<()> {
        self.admin.execute_unprepared(sql).await?;
        Ok(())
    }

    /// One integer from the database.
    pub(super) async fn scalar(&self, sql: &str) -> anyhow::Result<i64> {
        let row = self
            .admin
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await?
            .ok_or_else(|| anyhow::anyhow!("no row"))?;
        Ok(row.try_get("", "n")?)
    }

    pub(super) async fn shutdown(&self) {
        let all: Vec<App> = self
            .instances
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for app in all {
            app.shutdown().await;
        }
    }
}

/// The settings of one instance.
fn settings(db_url: &str, redis_url: &str, prefix: &str) -> Settings {
    let mut s = Settings::default();
    s.database.url = crate::env::as_app_role(db_url);
    if crate::env::pgbouncer() {
        s.database.pooler = waiaas_postgres::Pooler::PgbouncerTransaction;
    }
    s.database.min_connections = 0;
    s.database.max_connections = 8;
    s.database.connect_timeout_ms = 1_000;
    s.database.acquire_timeout_ms = 2_000;
    s.database.lock_timeout_ms = u64::try_from(LOCK_TIMEOUT.as_millis()).unwrap_or(300);
    s.database.auto_migrate = false;
    s.database.create_database = false;
    s.redis.url = redis_url.to_owned();
    s.redis.key_prefix = prefix.to_owned();
    s.cache.lease_ms = u64::try_from(LEASE.as_millis()).unwrap_or(1_000);
    s.rate_limit.enabled = false;
    // One posting worker per instance: the writers' postings queue behind each other and
    // are posted in batches (several per batch), under every fault.
    s.posting.workers = 1;
    // The checker's webhook receiver listens on loopback; retries come quickly.
    s.webhooks.allow_private_networks = true;
    s.webhooks.poll_interval_ms = 100;
    s.webhooks.retry_base_ms = 200;
    s
}

async fn build(db_url: &str, redis_url: &str, prefix: &str) -> anyhow::Result<App> {
    waiaas_app::build(&settings(db_url, redis_url, prefix)).await
}

/// A shared handle.
pub(super) type Shared = Arc<Env>;
