//! The expiry sweeper: every instance releases the holds past their expiry and ends the
//! transactions that waited for approval past their deadline, each under its wallet's row
//! lock, so instances running at once never end one twice (and a posting that meets an
//! expired hold first releases it itself).

use std::time::Duration;

use waiaas_domain::Services;

use crate::settings::HoldSettings;

/// Starts the sweeper on the current runtime.
pub fn spawn_sweeper(services: Services, settings: &HoldSettings) -> tokio::task::JoinHandle<()> {
    let interval = Duration::from_millis(settings.sweep_interval_ms.max(1));
    let batch = settings.sweep_batch.max(1);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            loop {
                let (n, failed) = services.expire_due(batch).await;
                if n > 0 {
                    tracing::info!(ended = n, "Expired holds released, expired approvals ended");
                }
                if let Some(e) = failed {
                    tracing::warn!(error = %e, ended = n, "Ending expired holds and approvals failed; the next run tries again");
                    break;
                }
                if n < usize::try_from(batch).unwrap_or(usize::MAX) {
                    break;
                }
            }
        }
    })
}
