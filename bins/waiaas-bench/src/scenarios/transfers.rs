//! Transfers through the domain service and the PostgreSQL adapter, batched (as deployed)
//! and one posting per transaction (`batch_size = 1`), on uniform wallets and on a hot pair,
//! against pgbench running the adapter's own statements, pgbench calling one PL/pgSQL
//! function per transfer, and pgbench calling one that does sixteen transfers per call and
//! commit (PostgreSQL's own ceiling for a batched design), at the same concurrency.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::{Deserialize, Serialize};

use super::{Holder, Scale, random_transfer};
use crate::baseline;
use crate::env::{self, Seeded};
use crate::load::{RunStats, closed_loop};
use crate::pgbench::{self, PgbenchStats};

/// One concurrency level of one workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferRow {
    /// Clients.
    pub concurrency: usize,
    /// The service posting in batches (default settings, with its Redis cache).
    pub batched: RunStats,
    /// Postings per batch in the batched run (`None` when no batch was taken).
    pub mean_batch: Option<f64>,
    /// The service posting each transfer in its own transaction (`batch_size = 1`).
    pub single: RunStats,
    /// pgbench with the adapter's single-transfer statements.
    pub pgbench: PgbenchStats,
    /// pgbench calling `waiaas_bench_transfer`, one whole transfer per call.
    pub plpgsql: PgbenchStats,
    /// pgbench calling `waiaas_bench_transfers`, [`baseline::CEILING_BATCH`] whole transfers
    /// per call and per commit: PostgreSQL's own ceiling for a batched design (its `tps` is
    /// calls; absent in results written before it was measured).
    #[serde(default)]
    pub ceiling: Option<PgbenchStats>,
    /// `batched.throughput / pgbench.tps`.
    pub vs_pgbench: f64,
    /// `batched.throughput / plpgsql.tps`.
    pub vs_plpgsql: f64,
    /// `batched.throughput / single.throughput`.
    pub vs_single: f64,
}

impl TransferRow {
    /// Transfers per second of the batched ceiling.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn ceiling_tps(&self) -> Option<f64> {
        self.ceiling
            .as_ref()
            .map(|c| c.tps * baseline::CEILING_BATCH as f64)
    }
}

/// Both workloads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferResults {
    /// Every client picks two distinct random wallets among all of them.
    pub uniform: Vec<TransferRow>,
    /// Every client moves money between the same two wallets, in a random direction.
    pub hot_pair: Vec<TransferRow>,
}

/// The levels measured.
pub const LEVELS: [usize; 4] = [1, 4, 16, 64];

/// The levels measured in quick mode (CI).
pub const QUICK_LEVELS: [usize; 2] = [1, 16];

/// What pgbench runs, and among how many wallets.
struct Workload {
    name: &'static str,
    wallets: u64,
    statements: String,
    plpgsql: String,
    ceiling: String,
}

fn ratio(a: f64, b: f64) -> f64 {
    a / b.max(1e-9)
}

/// The audit row a real transfer writes, so that the pgbench scripts write one of the same
/// size.
async fn audit_json(seeded: &Seeded, holder: Holder) -> anyhow::Result<String> {
    let app = env::instance(&seeded.db, Some(&env::redis_url()), 2).await?;
    random_transfer(&app.services, holder, seeded.wallets)
        .await
        .map_err(anyhow::Error::msg)?;
    app.shutdown().await;
    Ok(seeded
        .db
        .db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT new_value::text AS v FROM audit_logs WHERE action = 'transaction.create' ORDER BY created_at DESC LIMIT 1",
        ))
        .await?
        .map(|r| r.try_get("", "v"))
        .transpose()?
        .unwrap_or_else(|| "{}".to_owned()))
}

/// Prints what the ledger's tables hold after the runs, vacuumed, per transaction: the
/// storage a transfer costs (tables, indexes and TOAST).
async fn storage(seeded: &Seeded) -> anyhow::Result<()> {
    let db = &seeded.db.db;
    db.execute_unprepared("VACUUM ANALYZE").await?;
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT relname::text AS t, n_live_tup AS n, pg_total_relation_size(relid) AS b \
             FROM pg_stat_user_tables WHERE relname IN ('transactions', 'ledger_entries', \
             'audit_logs', 'events', 'ledger_chain', 'wallet_daily_spend') ORDER BY b DESC",
        ))
        .await?;
    let mut tables = Vec::new();
    let mut transactions = 0_i64;
    for r in &rows {
        let (t, n, b): (String, i64, i64) = (
            r.try_get("", "t")?,
            r.try_get("", "n")?,
            r.try_get("", "b")?,
        );
        if t == "transactions" {
            transactions = n;
        }
        tables.push((t, n, b));
    }
    let per = |b: i64| b as f64 / (transactions.max(1) as f64);
    let total: i64 = tables.iter().map(|t| t.2).sum();
    for (t, n, b) in &tables {
        eprintln!(
            "{:>40}  {t}: {n} rows, {:.1} MB, {:.0} bytes per transaction",
            "storage",
            *b as f64 / 1e6,
            per(*b)
        );
    }
    eprintln!(
        "{:>40}  {transactions} transactions: {:.0} bytes each in all",
        "storage",
        per(total)
    );
    Ok(())
}

/// One closed-loop run of a fresh instance posting at most `batch_size` per transaction,
/// with the mean batch size its posting workers reached.
async fn service(
    seeded: &Seeded,
    holder: Holder,
    workload: &Workload,
    clients: usize,
    batch_size: usize,
    scale: Scale,
) -> anyhow::Result<(RunStats, Option<f64>)> {
    // What the seed, earlier runs and pgbench wrote is placed and sealed before the clock
    // starts and before the instance exists (pgbench's transfers fire the events trigger with
    // no relay beside them): a run measures the relay and the sealer keeping up with its own
    // postings, as in service.
    env::settle(seeded, scale.quiet).await?;
    // A pool per run, closed before pgbench opens its own connections (PostgreSQL allows
    // 100 in all).
    let app =
        env::instance_batched(&seeded.db, Some(&env::redis_url()), clients, batch_size).await?;
    let services = app.services.clone();
    super::warm(&services, holder, seeded.wallets).await?;
    let wallets = workload.wallets;
    let wal = env::wal_bytes(&seeded.db.db).await?;
    let before = waiaas_postgres::batch_stats();
    let stats = closed_loop(
        &format!(
            "transfers, {}, batch {batch_size}, c={clients}",
            workload.name
        ),
        clients,
        scale.run,
        scale.quiet,
        move |_, _| {
            let services = services.clone();
            // As the API does for an authenticated request: the call acts for its owner.
            waiaas_domain::tenant::scope(
                waiaas_domain::tenant::Tenant::Owner(holder.owner),
                async move { random_transfer(&services, holder, wallets).await },
            )
        },
    )
    .await;
    let after = waiaas_postgres::batch_stats();
    let wal = env::wal_bytes(&seeded.db.db).await? - wal;
    if !scale.quiet && stats.ok > 0 {
        eprintln!(
            "{:>40}  {:.0} WAL bytes per transfer (batch {batch_size}, c={clients})",
            "",
            wal as f64 / stats.ok as f64
        );
    }
    app.shutdown().await;
    let batches = after.batches - before.batches;
    let mean = (batches > 0).then(|| (after.postings - before.postings) as f64 / batches as f64);
    Ok((stats, mean))
}

async fn level(
    seeded: &Seeded,
    holder: Holder,
    workload: &Workload,
    clients: usize,
    scale: Scale,
) -> anyhow::Result<TransferRow> {
    let batch_size = waiaas_app::Settings::default().posting.batch_size;
    let (batched, mean_batch) =
        service(seeded, holder, workload, clients, batch_size, scale).await?;
    let (single, _) = service(seeded, holder, workload, clients, 1, scale).await?;
    let url = &seeded.db.url;
    let pgbench = pgbench::run_script(url, &workload.statements, clients, scale.run).await?;
    let plpgsql = pgbench::run_script(url, &workload.plpgsql, clients, scale.run).await?;
    let ceiling = pgbench::run_script(url, &workload.ceiling, clients, scale.run).await?;
    if !scale.quiet {
        eprintln!(
            "{:>40}  pgbench statements {:.0}/s, PL/pgSQL {:.0}/s, ceiling {:.0}/s, mean batch {}",
            format!("transfers, {}, c={clients}", workload.name),
            pgbench.tps,
            plpgsql.tps,
            ceiling.tps * baseline::CEILING_BATCH as f64,
            mean_batch.map_or_else(|| "n/a".to_owned(), |m| format!("{m:.1}"))
        );
    }
    Ok(TransferRow {
        concurrency: clients,
        vs_pgbench: ratio(batched.throughput, pgbench.tps),
        vs_plpgsql: ratio(batched.throughput, plpgsql.tps),
        vs_single: ratio(batched.throughput, single.throughput),
        batched,
        mean_batch,
        single,
        pgbench,
        plpgsql,
        ceiling: Some(ceiling),
    })
}

/// Runs the scenario.
///
/// # Errors
/// When the database, Redis or pgbench fail, or the ledger does not reconcile afterwards.
pub async fn run(scale: Scale) -> anyhow::Result<TransferResults> {
    let wallets = if scale.quick { 200 } else { 1_000 };
    let seeded = env::seed(wallets, 8).await?;
    let holder = Holder {
        owner: seeded.owner,
        agent: seeded.agent,
    };
    env::grant_app_role(&seeded.db.db, &seeded.db.name).await?;
    let audit = audit_json(&seeded, holder).await?;
    baseline::install_transfer_fn(&seeded.db.db).await?;
    let (owner, agent) = (seeded.owner.to_string(), seeded.agent.to_string());
    let workload = |name, wallets| Workload {
        name,
        wallets,
        statements: baseline::transfer_script(wallets, &owner, &agent, &audit),
        plpgsql: baseline::transfer_fn_script(wallets, &owner, &agent, &audit),
        ceiling: baseline::transfers_fn_script(wallets, &owner, &agent, &audit),
    };
    // With two wallets every transfer goes from one of them to the other.
    let uniform = workload("uniform", wallets);
    let hot_pair = workload("hot pair", 2);
    let levels: &[usize] = if scale.quick { &QUICK_LEVELS } else { &LEVELS };
    let mut results = TransferResults {
        uniform: Vec::new(),
        hot_pair: Vec::new(),
    };
    for &c in levels {
        results
            .uniform
            .push(level(&seeded, holder, &uniform, c, scale).await?);
    }
    for &c in levels {
        results
            .hot_pair
            .push(level(&seeded, holder, &hot_pair, c, scale).await?);
    }
    // The last baselines' rows, sealed by the sealer alone.
    env::catch_up(&seeded, scale.quiet).await?;
    if !scale.quiet {
        storage(&seeded).await?;
    }
    let report = waiaas_postgres::reconcile(&seeded.db.db).await?;
    anyhow::ensure!(
        report.is_consistent(),
        "the bench ledger does not reconcile:\n{report}"
    );
    Ok(results)
}
