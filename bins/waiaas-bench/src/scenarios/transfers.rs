//! Transfers through the domain service and the PostgreSQL adapter at concurrency 1, 4, 16
//! and 64, against pgbench running the adapter's own statements at the same concurrency.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::{Deserialize, Serialize};

use super::{Holder, Scale, random_transfer};
use crate::baseline;
use crate::env;
use crate::load::{RunStats, closed_loop};

/// One concurrency level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferRow {
    /// Clients.
    pub concurrency: usize,
    /// The service (with its Redis cache, as deployed).
    pub service: RunStats,
    /// pgbench with the same statements: transactions per second.
    pub pgbench_tps: f64,
    /// `service.throughput / pgbench_tps`.
    pub ratio: f64,
}

/// The levels measured.
pub const LEVELS: [usize; 4] = [1, 4, 16, 64];

/// Runs the scenario.
///
/// # Errors
/// When the database, Redis or pgbench fail.
pub async fn run(scale: Scale) -> anyhow::Result<Vec<TransferRow>> {
    let wallets = if scale.quick { 200 } else { 1_000 };
    let seeded = env::seed(wallets, 8).await?;
    let holder = Holder {
        owner: seeded.owner,
        agent: seeded.agent,
    };
    // One real transfer gives the audit row the pgbench script writes (same size).
    let app = env::instance(&seeded.db, Some(&env::redis_url()), 2).await?;
    random_transfer(&app.services, holder, wallets)
        .await
        .map_err(anyhow::Error::msg)?;
    app.shutdown().await;
    let audit: String = seeded
        .db
        .db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT new_value::text AS v FROM audit_logs WHERE action = 'transaction.create' ORDER BY created_at DESC LIMIT 1",
        ))
        .await?
        .map(|r| r.try_get("", "v"))
        .transpose()?
        .unwrap_or_else(|| "{}".to_owned());
    let script = baseline::transfer_script(
        wallets,
        &seeded.owner.to_string(),
        &seeded.agent.to_string(),
        &audit,
    );

    let mut rows = Vec::new();
    for c in LEVELS {
        // A pool per level, closed before pgbench opens its own connections (PostgreSQL
        // allows 100 in all).
        let app = env::instance(&seeded.db, Some(&env::redis_url()), u32::try_from(c)? + 2).await?;
        let services = app.services.clone();
        super::warm(&services, holder, wallets).await?;
        let service = closed_loop(
            &format!("transfers, service, c={c}"),
            c,
            scale.run,
            scale.quiet,
            move |_, _| {
                let services = services.clone();
                async move { random_transfer(&services, holder, wallets).await }
            },
        )
        .await;
        app.shutdown().await;
        let pgbench_tps = baseline::pgbench_script(&seeded.db.url, &script, c, scale.run).await?;
        rows.push(TransferRow {
            concurrency: c,
            ratio: service.throughput / pgbench_tps.max(1e-9),
            service,
            pgbench_tps,
        });
    }
    let report = waiaas_postgres::reconcile(&seeded.db.db).await?;
    anyhow::ensure!(
        report.is_consistent(),
        "the bench ledger does not reconcile:\n{report}"
    );
    Ok(rows)
}
