//! Webhook deliveries: a delivery given up notifies its owner, so the owner's unread count
//! is tombstoned after the commit, like a posting's.

use std::sync::Arc;

use async_trait::async_trait;
use waiaas_domain::ports::{Attempt, DeliveryQueue, DueDelivery};
use waiaas_domain::{OwnerId, RepoError};

use super::{detached, unfenced};
use crate::{Cache, Change, Kind};

/// The delivery queue, with the unread count of a notified owner tombstoned.
pub struct CachedDeliveries {
    inner: Arc<dyn DeliveryQueue>,
    cache: Arc<Cache>,
}

impl std::fmt::Debug for CachedDeliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachedDeliveries")
    }
}

impl CachedDeliveries {
    /// Decorates `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn DeliveryQueue>, cache: Arc<Cache>) -> Self {
        Self { inner, cache }
    }
}

#[async_trait]
impl DeliveryQueue for CachedDeliveries {
    async fn claim(
        &self,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<DueDelivery>, RepoError> {
        self.inner.claim(limit, lease).await
    }

    async fn finish(
        &self,
        delivery: &DueDelivery,
        attempt: &Attempt,
    ) -> Result<Option<(OwnerId, i64)>, RepoError> {
        let (inner, cache) = (self.inner.clone(), self.cache.clone());
        let (delivery, attempt) = (delivery.clone(), attempt.clone());
        detached(async move {
            let notified = inner.finish(&delivery, &attempt).await?;
            if let Some((owner, version)) = notified {
                cache
                    .apply(vec![Change::tombstone(Kind::Unread, owner, version)])
                    .await
                    .map_err(unfenced::<RepoError>)?;
            }
            Ok(notified)
        })
        .await
    }
}
