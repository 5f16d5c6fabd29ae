//! The faults the checker injects, one at a time, each for about one step of the run.

use std::time::Duration;

use sea_orm::TransactionTrait as _;
use waiaas_testkit::raw_command;

use super::env::{Env, LEASE, LOCK_TIMEOUT};

/// Every fault, in the order a run goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// Redis killed, then started again from its append-only file: it comes back with data
    /// up to a second older than what was written to it.
    RedisRestartWithOldData,
    /// Redis stops answering anyone (`CLIENT PAUSE`).
    RedisPaused,
    /// The event bus's pub/sub connections cut.
    BusCut,
    /// Redis under eviction pressure: 2 MB `maxmemory`, `allkeys-lru`, a filler writing big
    /// keys.
    Eviction,
    /// Instance A cut off from Redis while B keeps going.
    InstanceCutOff,
    /// Every database connection of the instances terminated by the server.
    BackendsTerminated,
    /// PostgreSQL stopped (fast shutdown) and started again.
    PostgresRestarted,
    /// A wallet locked by another session for longer than the lock timeout.
    WalletLocked,
    /// An instance crashes with a live cache lease; a new one takes its place.
    InstanceCrash,
    /// Lease renewals (and marks) held up by a lock on the cache epoch for longer than a
    /// lease.
    RenewalsDelayed,
}

impl Fault {
    pub(super) const ALL: [Self; 10] = [
        Self::RedisRestartWithOldData,
        Self::BackendsTerminated,
        Self::Eviction,
        Self::WalletLocked,
        Self::InstanceCutOff,
        Self::PostgresRestarted,
        Self::RedisPaused,
        Self::InstanceCrash,
        Self::BusCut,
        Self::RenewalsDelayed,
    ];

    pub(super) const fn describe(self) -> &'static str {
        match self {
            Self::RedisRestartWithOldData => "Redis killed and restarted from its AOF (older data)",
            Self::RedisPaused => "Redis paused (CLIENT PAUSE)",
            Self::BusCut => "event bus cut (CLIENT KILL TYPE pubsub)",
            Self::Eviction => "Redis evicting (maxmemory 2mb, allkeys-lru, a filler)",
            Self::InstanceCutOff => "instance A cut off from Redis",
            Self::BackendsTerminated => "PostgreSQL backends terminated",
            Self::PostgresRestarted => "PostgreSQL restarted",
            Self::WalletLocked => "a wallet locked past the lock timeout",
            Self::InstanceCrash => "an instance crashed with a live lease",
            Self::RenewalsDelayed => "lease renewals delayed",
        }
    }
}

/// Injects `fault` for about `step`; returns when it is over and everything is back.
pub(super) async fn inject(
    env: &Env,
    fault: Fault,
    step: Duration,
    round: usize,
) -> anyhow::Result<()> {
    match fault {
        Fault::RedisRestartWithOldData => {
            let mut redis = env.redis.lock().await;
            redis.kill();
            tokio::time::sleep(step / 2).await;
            redis.restart().await?;
        }
        Fault::RedisPaused => {
            let redis = env.redis.lock().await;
            redis.pause(step.min(Duration::from_millis(1_500))).await?;
            tokio::time::sleep(step.min(Duration::from_millis(1_500))).await;
        }
        Fault::BusCut => {
            let redis = env.redis.lock().await;
            let _ = raw_command(redis.port(), &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
        }
        Fault::Eviction => evict(env, step).await?,
        Fault::InstanceCutOff => {
            env.proxy.set_down(true);
            tokio::time::sleep(step).await;
            env.proxy.set_down(false);
        }
        Fault::BackendsTerminated => {
            env.exec(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await?;
        }
        Fault::PostgresRestarted => {
            let mut pg = env.pg.lock().await;
            pg.stop().await;
            tokio::time::sleep(step / 3).await;
            pg.start_again().await?;
        }
        Fault::WalletLocked => {
            let txn = env.admin.begin().await?;
            sea_orm::ConnectionTrait::execute_unprepared(
                &txn,
                &format!(
                    "SELECT 1 FROM wallets WHERE id = '{}' FOR UPDATE",
                    env.wallets[round % env.wallets.len()]
                ),
            )
            .await?;
            tokio::time::sleep((LOCK_TIMEOUT * 4).max(step / 2)).await;
            txn.rollback().await?;
        }
        Fault::InstanceCrash => env.crash_and_replace(round % 2).await?,
        Fault::RenewalsDelayed => {
            let txn = env.admin.begin().await?;
            sea_orm::ConnectionTrait::execute_unprepared(
                &txn,
                "SELECT 1 FROM cache_epoch WHERE id = 1 FOR UPDATE",
            )
            .await?;
            tokio::time::sleep(LEASE * 3 / 2).await;
            txn.rollback().await?;
        }
    }
    Ok(())
}

/// Fills Redis past a 2 MB bound with big keys of its own, so it evicts the service's
/// entries and fill tokens (least recently used first).
async fn evict(env: &Env, step: Duration) -> anyhow::Result<()> {
    let port = env.redis.lock().await.port();
    raw_command(port, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]).await?;
    raw_command(port, &["CONFIG", "SET", "maxmemory", "2mb"]).await?;
    let blob = "x".repeat(64 * 1024);
    let until = tokio::time::Instant::now() + step;
    let mut n = 0_u64;
    while tokio::time::Instant::now() < until {
        let key = format!("filler:blob:key:{n}");
        // Writes may be refused while Redis is over its bound: that is the point.
        let _ = raw_command(port, &["SET", &key, &blob, "EX", "60"]).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    raw_command(port, &["CONFIG", "SET", "maxmemory", "0"]).await?;
    Ok(())
}
