//! The operator commands behind the binary's subcommands.

use anyhow::Context as _;

use crate::database::{self, MigrateAction};
use crate::settings::Settings;

/// `waiaas migrate …`: prints what was done.
///
/// # Errors
/// When PostgreSQL cannot be reached or a migration fails.
pub async fn migrate(settings: &Settings, action: MigrateAction) -> anyhow::Result<()> {
    let pg = settings.database.migration_pg();
    if settings.database.create_database && action != MigrateAction::Status {
        database::create_if_missing(&pg).await?;
    }
    let db = database::connect_for_maintenance(&pg).await?;
    println!("{}", database::migrate(&db, action).await?);
    if matches!(action, MigrateAction::Up | MigrateAction::Fresh)
        && crate::roles::regrant_if_present(&db, settings).await?
    {
        println!(
            "granted role `{}` what serving needs on the tables now present",
            settings.database.app_role
        );
    }
    db.close().await?;
    Ok(())
}

/// `waiaas reconcile`: prints the report; `Ok(false)` when anything does not add up.
///
/// # Errors
/// When PostgreSQL cannot be read.
pub async fn reconcile(settings: &Settings) -> anyhow::Result<bool> {
    let db = database::connect_for_maintenance(&settings.database.pg()).await?;
    let report = waiaas_postgres::reconcile(&db).await?;
    println!("{report}");
    db.close().await?;
    Ok(report.is_consistent())
}

/// `waiaas verify`: recomputes the tamper-evident chain (from the start, or from a trusted
/// `position:hash` checkpoint) and prints the report; `Ok(false)` when it is broken.
///
/// # Errors
/// When PostgreSQL cannot be read, or the checkpoint is not `position:hash`.
pub async fn verify(settings: &Settings, from: Option<&str>) -> anyhow::Result<bool> {
    let checkpoint = match from {
        None => None,
        Some(s) => {
            let (p, h) = s
                .split_once(':')
                .context("the checkpoint must be `position:hash` (from GET /v1/ledger/head)")?;
            let position: i64 = p.trim().parse().context("the checkpoint's position")?;
            let bytes = hex::decode(h.trim()).context("the checkpoint's hash (hex)")?;
            let hash = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                anyhow::anyhow!("the checkpoint's hash must be 32 bytes (64 hex digits)")
            })?;
            Some((position, hash))
        }
    };
    let db = database::connect_for_maintenance(&settings.database.pg()).await?;
    let report = waiaas_postgres::chain::verify(&db, checkpoint).await?;
    println!("{report}");
    db.close().await?;
    Ok(report.is_intact())
}

/// `waiaas bootstrap --name <owner>`: creates an owner and prints its API key (shown once).
///
/// # Errors
/// When PostgreSQL cannot be reached or the name is invalid.
pub async fn bootstrap(settings: &Settings, name: &str) -> anyhow::Result<()> {
    crate::serve::prepare_database(settings).await?;
    let mut settings = settings.clone();
    // Creating an owner needs no cache; keep the command independent of Redis.
    settings.redis.enabled = false;
    let app = crate::wiring::build(&settings).await?;
    // A one-off command runs no background work: the expiry sweeper belongs to the serving
    // instances (this process writes nothing through to Redis).
    app.background.stop();
    let (owner, key) = app
        .services
        .create_owner(name, &waiaas_domain::AuditContext::system())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("owner_id: {}", owner.id);
    println!("api_key:  {}", key.expose());
    println!("(the API key is shown once; store it now)");
    app.shutdown().await;
    Ok(())
}

/// The key patterns of this service: every cache kind, rate limits and locks.
fn patterns() -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = waiaas_cache::Kind::ALL
        .iter()
        .map(|k| (k.name().to_owned(), k.pattern()))
        .collect();
    p.push(("ratelimit".to_owned(), "ratelimit:requests:*".to_owned()));
    p.push(("lock".to_owned(), "lock:*".to_owned()));
    p
}

/// `waiaas cache stats` / `waiaas cache flush`: counts (and with `flush`, deletes) this
/// service's keys only, kind by kind. Flushing is always safe: Redis holds no truth. A flush
/// starts a new cache epoch first and waits until no instance holds a lease of the old one,
/// so nothing cached before the flush is served after it.
///
/// # Errors
/// When Redis (or, for a flush, PostgreSQL) cannot be reached.
pub async fn cache(settings: &Settings, flush: bool) -> anyhow::Result<()> {
    use waiaas_domain::ports::CacheStore as _;
    let redis = waiaas_redis::Redis::connect(&crate::wiring::redis_config(settings)).await?;
    if !redis
        .wait_connected(std::time::Duration::from_secs(3))
        .await
    {
        anyhow::bail!("Redis is not reachable at the configured address");
    }
    if flush {
        new_cache_epoch(settings).await?;
    }
    let mut total = 0;
    for (name, pattern) in patterns() {
        let n = redis
            .scan(&pattern, flush)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        total += n;
        println!(
            "{name:<12} {n:>10} {}",
            if flush { "deleted" } else { "keys" }
        );
    }
    println!(
        "{:<12} {total:>10} {}",
        "total",
        if flush { "deleted" } else { "keys" }
    );
    let _ = redis.quit().await;
    Ok(())
}

/// Marks the cache epoch stale and waits until every instance's lease of it has ended: the
/// next renewal anywhere starts a new epoch, and entries of the old one are never served.
async fn new_cache_epoch(settings: &Settings) -> anyhow::Result<()> {
    use waiaas_domain::ports::CacheFence as _;
    let db = database::connect_for_maintenance(&settings.database.pg()).await?;
    let pg = waiaas_postgres::Postgres::new(db.clone());
    let me = uuid::Uuid::new_v4();
    let epoch = pg
        .mark_stale(me)
        .await
        .map_err(|e| anyhow::anyhow!("marking the cache epoch stale: {e:#}"))?;
    let wait = pg
        .lease_wait(me)
        .await
        .map_err(|e| anyhow::anyhow!("reading cache leases: {e:#}"))?;
    println!(
        "cache epoch {epoch} ended; waiting {} ms for instances' leases",
        wait.as_millis()
    );
    tokio::time::sleep(wait).await;
    db.close().await?;
    Ok(())
}
