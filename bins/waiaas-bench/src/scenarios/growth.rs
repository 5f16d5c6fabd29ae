//! Growth, in two parts that keep apart what the old single series conflated:
//!
//! - **history**: the same 1,000 wallets with no history and with 10 million ledger rows behind
//!   them, measured in alternating rounds. The two must be level (p50 within ×1.1): no
//!   statement of a posting reads history.
//! - **wallets**: 1 thousand, 100 thousand and 1 million wallets over the same history,
//!   reported as they are, with what each run cost PostgreSQL's buffers (hits and reads per
//!   transfer, from `pg_stat_database`) and how many wallet ownerships the instance looked up
//!   in PostgreSQL per transfer (its `waiaas_cache_loads_total{kind="ownership"}`), the two
//!   causes of any rise.
//!
//! History and wallets are seeded in bulk by set-based INSERTs.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use serde::{Deserialize, Serialize};

use super::{Holder, Scale, random_transfer, warm};
use crate::env::{self, Seeded};
use crate::load::{RunStats, closed_loop};

/// What a run cost, per successful transfer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cost {
    /// Pages found in PostgreSQL's shared buffers.
    pub buffer_hits: f64,
    /// Pages PostgreSQL read from the operating system (its page cache or the disk).
    pub buffer_reads: f64,
    /// Wallet ownerships the instance looked up in PostgreSQL (not found in L1 or Redis).
    pub ownership_loads: f64,
}

/// One size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrowthRow {
    /// Wallets in the database.
    pub wallets: u64,
    /// Ledger rows in the database.
    pub ledger_rows: u64,
    /// Transfers among all of them.
    pub transfers: RunStats,
    /// What they cost (absent in results written before it was measured).
    #[serde(default)]
    pub cost: Option<Cost>,
}

/// The same wallets with and without history: the round with the median p50 of each.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryPair {
    /// Wallets in each database (the instance knows every one's ownership before it runs).
    pub wallets: u64,
    /// History ledger rows behind them in the second database.
    pub history_rows: u64,
    /// Alternating rounds run on each.
    pub rounds: usize,
    /// Without history.
    pub without: GrowthRow,
    /// With the history.
    pub with: GrowthRow,
    /// `with.p50 / without.p50`.
    pub p50_ratio: f64,
}

/// What the scenario measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrowthResults {
    /// Concurrency.
    pub concurrency: usize,
    /// Seconds spent seeding.
    pub seed_seconds: f64,
    /// Seconds spent sealing what was seeded into the ledger's hash chain, before any run
    /// (absent in results written before it was done).
    #[serde(default)]
    pub seal_seconds: f64,
    /// The same wallets with and without history (absent in results written before the split).
    #[serde(default)]
    pub history: Option<HistoryPair>,
    /// The sizes over the same history, smallest first.
    pub rows: Vec<GrowthRow>,
}

/// Cumulative counters of the bench database and the process.
#[derive(Debug, Clone, Copy)]
struct Counters {
    hits: i64,
    reads: i64,
    ownership_loads: f64,
}

async fn counters(seeded: &Seeded) -> anyhow::Result<Counters> {
    let row = seeded
        .db
        .db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no statistics for the bench database"))?;
    Ok(Counters {
        hits: row.try_get("", "blks_hit")?,
        reads: row.try_get("", "blks_read")?,
        ownership_loads: prometheus_counter(
            &waiaas_app::metrics::renderer()(),
            "waiaas_cache_loads_total",
            "kind=\"ownership\"",
        ),
    })
}

/// The sum of a counter's series carrying `label` in Prometheus' text format.
fn prometheus_counter(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One measured run of transfers among all of `seeded`'s wallets on a new instance (whose
/// ownership cache is warmed first when `warmed`), with what it cost.
async fn measured(
    seeded: &Seeded,
    label: &str,
    scale: Scale,
    concurrency: usize,
    warmed: bool,
) -> anyhow::Result<GrowthRow> {
    let size = seeded.wallets;
    let app = env::instance(&seeded.db, Some(&env::redis_url()), 40).await?;
    let holder = Holder {
        owner: seeded.owner,
        agent: seeded.agent,
    };
    if warmed {
        warm(&app.services, holder, size).await?;
    }
    let before = counters(seeded).await?;
    let services = app.services.clone();
    let transfers = closed_loop(label, concurrency, scale.run, scale.quiet, move |_, _| {
        let services = services.clone();
        async move { random_transfer(&services, holder, size).await }
    })
    .await;
    app.shutdown().await;
    // Backends report their buffer counters when they go idle (at most a second later) or
    // exit (the instance's pool is closed): wait for both before reading them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = counters(seeded).await?;
    #[allow(clippy::cast_precision_loss)]
    let per = |d: f64| d / (transfers.ok.max(1) as f64);
    #[allow(clippy::cast_precision_loss)]
    let cost = Cost {
        buffer_hits: per((after.hits - before.hits) as f64),
        buffer_reads: per((after.reads - before.reads) as f64),
        ownership_loads: per(after.ownership_loads - before.ownership_loads),
    };
    Ok(GrowthRow {
        wallets: size,
        ledger_rows: seeded.history_rows + 2 * seeded.wallets,
        transfers,
        cost: Some(cost),
    })
}

/// The run with the median p50 of `runs` (not empty).
fn median(mut runs: Vec<GrowthRow>) -> GrowthRow {
    runs.sort_by(|a, b| a.transfers.p50_ms.total_cmp(&b.transfers.p50_ms));
    runs.swap_remove(runs.len() / 2)
}

/// Runs the scenario.
///
/// # Errors
/// When the database fails.
pub async fn run(scale: Scale) -> anyhow::Result<GrowthResults> {
    let concurrency = 16;
    let (sizes, history, rounds): (&[u64], u64, usize) = if scale.quick {
        (&[1_000, 10_000, 50_000], 100_000, 1)
    } else {
        (&[1_000, 100_000, 1_000_000], 10_000_000, 3)
    };
    let started = Instant::now();
    let plain = env::seed(sizes[0], 8).await?;
    let mut seeded = env::seed(sizes[0], 8).await?;
    env::add_history(&mut seeded, history, sizes[0]).await?;
    let mut seed_seconds = started.elapsed().as_secs_f64();
    let mut seal_seconds =
        env::settle(&plain, scale.quiet).await? + env::settle(&seeded, scale.quiet).await?;

    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (w, h) = (sizes[0], seeded.history_rows);
        without.push(
            measured(
                &plain,
                &format!("{w} wallets, no history ({round}/{rounds})"),
                scale,
                concurrency,
                true,
            )
            .await?,
        );
        with.push(
            measured(
                &seeded,
                &format!("{w} wallets, {h} history rows ({round}/{rounds})"),
                scale,
                concurrency,
                true,
            )
            .await?,
        );
    }
    let (without, with) = (median(without), median(with));
    let p50_ratio = with.transfers.p50_ms / without.transfers.p50_ms.max(1e-9);
    let history_pair = HistoryPair {
        wallets: sizes[0],
        history_rows: seeded.history_rows,
        rounds,
        without,
        with,
        p50_ratio,
    };
    check_reconciles(&plain).await?;
    drop(plain);

    let mut rows = Vec::new();
    for &size in sizes {
        let t = Instant::now();
        env::add_wallets(&mut seeded, size).await?;
        seed_seconds += t.elapsed().as_secs_f64();
        seal_seconds += env::settle(&seeded, scale.quiet).await?;
        rows.push(
            measured(
                &seeded,
                &format!("transfers, {size} wallets"),
                scale,
                concurrency,
                false,
            )
            .await?,
        );
    }
    check_reconciles(&seeded).await?;
    Ok(GrowthResults {
        concurrency,
        seed_seconds,
        seal_seconds,
        history: Some(history_pair),
        rows,
    })
}

async fn check_reconciles(seeded: &Seeded) -> anyhow::Result<()> {
    let report = waiaas_postgres::reconcile(&seeded.db.db).await?;
    anyhow::ensure!(
        report.is_consistent(),
        "the seeded ledger does not reconcile:\n{report}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_counter_is_summed_over_the_series_with_the_label() {
        let text = "# TYPE waiaas_cache_loads_total counter\n\
            waiaas_cache_loads_total{kind=\"ownership\"} 12\n\
            waiaas_cache_loads_total{kind=\"balance\"} 7\n\
            waiaas_cache_loads_total_other{kind=\"ownership\"} 5\n";
        assert!(
            (super::prometheus_counter(text, "waiaas_cache_loads_total", "kind=\"ownership\"")
                - 12.0)
                .abs()
                < f64::EPSILON
        );
        assert!(
            super::prometheus_counter(text, "waiaas_cache_loads_total", "kind=\"asset\"").abs()
                < f64::EPSILON
        );
    }
}
