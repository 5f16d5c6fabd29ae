//! Events retention: every instance wakes up every `events.retention_interval_s`, and the
//! one that takes the lock `job:name:events-retention` deletes the events older than
//! `events.retention_days`, in batches, extending its lock between them and stopping when it
//! no longer holds it. A stream asked to resume below what was deleted answers `410`.

use std::sync::Arc;
use std::time::Duration;

use waiaas_domain::ports::{EventLog, LockManager};

use crate::settings::EventSettings;

/// The lock the job runs under.
pub const LOCK: &str = "job:name:events-retention";

/// How long the lock is taken for, extended after every batch.
const LOCK_TTL: Duration = Duration::from_secs(60);

/// Runs the job once on this instance if it gets the lock; returns how many events it
/// deleted (`None` when another instance holds the lock).
///
/// # Errors
/// When the lock store or PostgreSQL fails (what was deleted stays deleted).
pub async fn run_once(
    log: &dyn EventLog,
    locks: &dyn LockManager,
    days: u32,
    batch: u32,
) -> anyhow::Result<Option<u64>> {
    let Some(lease) = locks.acquire(LOCK, LOCK_TTL).await? else {
        return Ok(None);
    };
    let before = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
    let mut deleted = 0;
    let result = async {
        loop {
            let n = log.delete_before(before, batch).await?;
            deleted += n;
            if n < u64::from(batch) || !locks.extend(&lease, LOCK_TTL).await? {
                return anyhow::Ok(());
            }
        }
    }
    .await;
    if let Err(e) = locks.release(&lease).await {
        tracing::debug!(error = %e, "Retention lock not released; it expires by itself");
    }
    result.map(|()| Some(deleted))
}

/// Starts the job on the current runtime (nothing when retention is off).
pub fn spawn(
    log: Arc<dyn EventLog>,
    locks: Arc<dyn LockManager>,
    settings: &EventSettings,
) -> Option<tokio::task::JoinHandle<()>> {
    if settings.retention_days == 0 {
        return None;
    }
    let (days, batch) = (settings.retention_days, settings.batch.max(1));
    let interval = Duration::from_secs(settings.retention_interval_s.max(1));
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(log.as_ref(), locks.as_ref(), days, batch).await {
                Ok(Some(n)) if n > 0 => {
                    tracing::info!(deleted = n, days, "Old events deleted");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "Deleting old events failed; the next run tries again");
                }
            }
        }
    }))
}
