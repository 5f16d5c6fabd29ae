//! Redis killed mid-run: transfers and balance reads against the same runs with Redis up.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use waiaas_testkit::RedisServer;

use super::{Holder, Scale, random_transfer};
use crate::env::{self, wallet_id};
use crate::load::{RunStats, closed_loop};

/// What the scenario measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisDownResults {
    /// Concurrency.
    pub concurrency: usize,
    /// Transfers with Redis up.
    pub transfers_up: RunStats,
    /// Transfers over a run during which Redis is killed (a third of the way in).
    pub transfers_down: RunStats,
    /// `transfers_down.throughput / transfers_up.throughput`.
    pub transfer_ratio: f64,
    /// Balance reads with Redis up (mostly L2 hits).
    pub reads_up: RunStats,
    /// Balance reads with Redis dead and the breaker open (from PostgreSQL).
    pub reads_down: RunStats,
    /// The breaker's per-call timeout, milliseconds.
    pub call_timeout_ms: f64,
}

/// Runs the scenario with its own `redis-server`.
///
/// # Errors
/// When the database or `redis-server` fail.
pub async fn run(scale: Scale) -> anyhow::Result<RedisDownResults> {
    let concurrency = 16;
    let wallets = if scale.quick { 200 } else { 1_000 };
    let seeded = env::seed(wallets, 8).await?;
    let mut redis = RedisServer::start().await?;
    let app = env::instance(&seeded.db, Some(&redis.url()), 40).await?;
    let holder = Holder {
        owner: seeded.owner,
        agent: seeded.agent,
    };
    env::wait_for_cache_lease(&app).await?;

    let transfer = |label: &'static str| {
        let services = app.services.clone();
        closed_loop(label, concurrency, scale.run, scale.quiet, move |_, _| {
            let services = services.clone();
            async move { random_transfer(&services, holder, wallets).await }
        })
    };
    let read = |label: &'static str| {
        let port = app.services.ports().wallets.clone();
        closed_loop(label, concurrency, scale.run, scale.quiet, move |w, n| {
            let port = port.clone();
            async move {
                port.balance(wallet_id((w as u64 * 31 + n) % wallets + 1))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
    };

    let transfers_up = transfer("transfers, Redis up").await;
    let reads_up = read("balance reads, Redis up").await;

    let kill_at = scale.run / 3;
    let run = transfer("transfers, Redis killed mid-run");
    let kill = async {
        tokio::time::sleep(kill_at).await;
        redis.kill();
    };
    let (transfers_down, ()) = tokio::join!(run, kill);
    // Let the breaker open, then read from PostgreSQL only.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reads_down = read("balance reads, Redis dead").await;
    redis.restart().await?;

    app.shutdown().await;
    Ok(RedisDownResults {
        concurrency,
        transfer_ratio: transfers_down.throughput / transfers_up.throughput.max(1e-9),
        transfers_up,
        transfers_down,
        reads_up,
        reads_down,
        call_timeout_ms: 100.0,
    })
}
