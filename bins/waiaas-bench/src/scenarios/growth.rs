//! Growth: the transfer benchmark at 1 thousand, 100 thousand and 1 million wallets, with 10
//! million ledger rows behind them (seeded in bulk by set-based INSERTs). Latency must stay
//! flat: no statement of a posting reads history.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Holder, Scale, random_transfer};
use crate::env;
use crate::load::{RunStats, closed_loop};

/// One size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrowthRow {
    /// Wallets in the database.
    pub wallets: u64,
    /// Ledger rows in the database.
    pub ledger_rows: u64,
    /// Transfers among all of them.
    pub transfers: RunStats,
}

/// What the scenario measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrowthResults {
    /// Concurrency.
    pub concurrency: usize,
    /// Seconds spent seeding.
    pub seed_seconds: f64,
    /// The sizes, smallest first.
    pub rows: Vec<GrowthRow>,
}

/// Runs the scenario.
///
/// # Errors
/// When the database fails.
pub async fn run(scale: Scale) -> anyhow::Result<GrowthResults> {
    let concurrency = 16;
    let (sizes, history): (&[u64], u64) = if scale.quick {
        (&[1_000, 10_000, 50_000], 100_000)
    } else {
        (&[1_000, 100_000, 1_000_000], 10_000_000)
    };
    let started = Instant::now();
    let mut seeded = env::seed(sizes[0], 8).await?;
    env::add_history(&mut seeded, history, sizes[0]).await?;
    let mut seed_seconds = started.elapsed().as_secs_f64();
    let mut rows = Vec::new();
    for &size in sizes {
        let t = Instant::now();
        env::add_wallets(&mut seeded, size).await?;
        seed_seconds += t.elapsed().as_secs_f64();
        let app = env::instance(&seeded.db, Some(&env::redis_url()), 40).await?;
        let holder = Holder {
            owner: seeded.owner,
            agent: seeded.agent,
        };
        let services = app.services.clone();
        let transfers = closed_loop(
            &format!("transfers, {size} wallets"),
            concurrency,
            scale.run,
            scale.quiet,
            move |_, _| {
                let services = services.clone();
                async move { random_transfer(&services, holder, size).await }
            },
        )
        .await;
        app.shutdown().await;
        rows.push(GrowthRow {
            wallets: size,
            ledger_rows: seeded.history_rows + 2 * seeded.wallets,
            transfers,
        });
    }
    let report = waiaas_postgres::reconcile(&seeded.db.db).await?;
    anyhow::ensure!(
        report.is_consistent(),
        "the seeded ledger does not reconcile:\n{report}"
    );
    Ok(GrowthResults {
        concurrency,
        seed_seconds,
        rows,
    })
}
