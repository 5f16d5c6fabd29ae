//! Readiness: PostgreSQL must answer; Redis may be down (the service is then degraded).

use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use waiaas_http::{ComponentStatus, HealthCheck, Readiness};
use waiaas_redis::Redis;

/// Checks the instance's dependencies.
#[derive(Debug, Clone)]
pub struct Health {
    db: DatabaseConnection,
    redis: Option<Redis>,
}

impl Health {
    /// Checks `db` and, when enabled, `redis`.
    #[must_use]
    pub const fn new(db: DatabaseConnection, redis: Option<Redis>) -> Self {
        Self { db, redis }
    }
}

#[async_trait]
impl HealthCheck for Health {
    async fn readiness(&self) -> Readiness {
        let database = match tokio::time::timeout(
            Duration::from_secs(2),
            self.db.execute_unprepared("SELECT 1"),
        )
        .await
        {
            Ok(Ok(_)) => ComponentStatus::Up,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Readiness: PostgreSQL unreachable");
                ComponentStatus::Down("unreachable".to_owned())
            }
            Err(_) => ComponentStatus::Down("timed out".to_owned()),
        };
        let redis = match &self.redis {
            None => ComponentStatus::Disabled,
            Some(r) => match tokio::time::timeout(Duration::from_millis(500), r.ping()).await {
                Ok(Ok(())) => ComponentStatus::Up,
                Ok(Err(_)) => ComponentStatus::Down("unreachable".to_owned()),
                Err(_) => ComponentStatus::Down("timed out".to_owned()),
            },
        };
        Readiness { database, redis }
    }
}
