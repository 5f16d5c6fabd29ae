//! The ledger's sealer: every instance wakes up every `ledger.seal_interval_ms` and seals
//! what has committed since (batches of `ledger.seal_batch`, until none is full) into the
//! tamper-evident chain (`waiaas_postgres::chain`). Instances take turns on the chain
//! head's row lock; one that finds it taken skips its turn. Off the request path: a posting
//! never waits for it.

use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::settings::LedgerSettings;

/// Seals until nothing full is left; returns how many rows were sealed.
///
/// # Errors
/// When PostgreSQL fails (what was sealed stays sealed).
pub async fn run_once(db: &DatabaseConnection, batch: u32) -> anyhow::Result<u64> {
    let mut sealed = 0;
    loop {
        let n = waiaas_postgres::chain::seal(db, batch).await?;
        sealed += n;
        if n < u64::from(batch.max(1)) {
            return Ok(sealed);
        }
    }
}

/// Starts the sealer on the current runtime (nothing when `ledger.seal_interval_ms` is 0).
pub fn spawn(
    db: DatabaseConnection,
    settings: &LedgerSettings,
) -> Option<tokio::task::JoinHandle<()>> {
    if settings.seal_interval_ms == 0 {
        return None;
    }
    let interval = Duration::from_millis(settings.seal_interval_ms);
    let batch = settings.seal_batch.max(1);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&db, batch).await {
                Ok(n) if n > 0 => {
                    ::metrics::counter!("waiaas_ledger_sealed_total").increment(n);
                    tracing::debug!(sealed = n, "Ledger rows sealed");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "Sealing the ledger failed; the next run tries again");
                }
            }
        }
    }))
}
