//! Balance reads: an L2 (Redis) hit and a miss (PostgreSQL), against `redis-benchmark -t get`
//! and `pgbench -S` at the same concurrency; and L1 hits (ownership lookups) on one core.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Holder, Scale};

use crate::baseline;
use crate::env::{self, wallet_id};
use crate::load::{RunStats, closed_loop};

/// What the scenario measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadResults {
    /// Concurrency of the L2 and miss runs.
    pub concurrency: usize,
    /// Balance reads served from Redis (the cached wallet port: lease check, GET, decode).
    pub l2_hit: RunStats,
    /// `redis-benchmark -t get`, GETs per second.
    pub redis_get: f64,
    /// `l2_hit.throughput / redis_get`.
    pub l2_ratio: f64,
    /// Balance reads that miss the cache (L2 miss, PostgreSQL read, fill).
    pub miss: RunStats,
    /// `pgbench -S`, reads per second.
    pub pgbench_select: f64,
    /// `miss.throughput / pgbench_select`.
    pub miss_ratio: f64,
    /// L1 hits per second on one core (ownership lookups).
    pub l1_hits_per_second: f64,
}

/// Runs the scenario.
///
/// # Errors
/// When the database, Redis or a baseline fail.
pub async fn run(scale: Scale) -> anyhow::Result<ReadResults> {
    let concurrency = 16;
    let hot = 100_u64;
    let cold = if scale.quick { 20_000 } else { 300_000 };
    let mut seeded = env::seed(hot, 8).await?;
    env::add_wallets(&mut seeded, hot + cold).await?;
    let app = env::instance(&seeded.db, Some(&env::redis_url()), 40).await?;
    let _ = Holder {
        owner: seeded.owner,
        agent: seeded.agent,
    };
    let wallets = app.services.ports().wallets.clone();
    // Wait for the cache lease, then warm the hot set.
    env::wait_for_cache_lease(&app).await?;
    for i in 1..=hot {
        wallets.balance(wallet_id(i)).await?;
    }

    // Ours and redis-benchmark alternate three times; the medians are compared, so a noisy
    // moment on this shared machine does not decide the ratio.
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 1..=3 {
        let port = wallets.clone();
        let run = closed_loop(
            &format!("balance reads, L2 hit ({round}/3)"),
            concurrency,
            scale.run,
            scale.quiet,
            move |w, n| {
                let port = port.clone();
                async move {
                    let i = (w as u64 * 7 + n) % hot + 1;
                    port.balance(wallet_id(i))
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            },
        )
        .await;
        let requests = ((run.throughput * scale.run.as_secs_f64()) as u64).clamp(20_000, 2_000_000);
        theirs.push(baseline::redis_get(&env::redis_url(), concurrency, requests).await?);
        ours.push(run);
    }
    ours.sort_by(|a, b| a.throughput.total_cmp(&b.throughput));
    theirs.sort_by(f64::total_cmp);
    let l2_hit = ours[1].clone();
    let redis_get = theirs[1];

    // Misses: every read is of a wallet not read before: L2 miss, PostgreSQL read, fill.
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(hot + 1));
    let port = wallets.clone();
    let miss = closed_loop(
        "balance reads, miss",
        concurrency,
        scale.run,
        scale.quiet,
        move |_, _| {
            let (port, next) = (port.clone(), next.clone());
            async move {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i > hot + cold {
                    return Err("ran out of cold wallets".to_owned());
                }
                port.balance(wallet_id(i))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        },
    )
    .await;
    let bench_db = format!("{}_pgbench", seeded.db.name);
    let admin = waiaas_testkit::admin_url().await?;
    let pgb_url = waiaas_testkit::with_database(&admin, &bench_db);
    create_db(&admin, &bench_db).await?;
    baseline::pgbench_init(&pgb_url).await?;
    let pgbench_select = baseline::pgbench_select(&pgb_url, concurrency, scale.run).await;
    drop_db(&admin, &bench_db).await?;
    let pgbench_select = pgbench_select?;

    // L1: one task, one core, ownership lookups of the hot set.
    for i in 1..=hot {
        wallets.ownership(wallet_id(i)).await?;
    }
    let started = Instant::now();
    let mut hits = 0_u64;
    while started.elapsed() < scale.run {
        for i in 1..=hot {
            wallets.ownership(wallet_id(i)).await?;
        }
        hits += hot;
    }
    let l1_hits_per_second = hits as f64 / started.elapsed().as_secs_f64();

    app.shutdown().await;
    Ok(ReadResults {
        concurrency,
        l2_ratio: l2_hit.throughput / redis_get.max(1e-9),
        l2_hit,
        redis_get,
        miss_ratio: miss.throughput / pgbench_select.max(1e-9),
        miss,
        pgbench_select,
        l1_hits_per_second,
    })
}

async fn admin_exec(admin: &str, sql: &str) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait as _;
    let db = sea_orm::Database::connect(admin).await?;
    db.execute_unprepared(sql).await?;
    db.close().await?;
    Ok(())
}

async fn create_db(admin: &str, name: &str) -> anyhow::Result<()> {
    admin_exec(admin, &format!("CREATE DATABASE {name}")).await
}

async fn drop_db(admin: &str, name: &str) -> anyhow::Result<()> {
    admin_exec(
        admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await
}
