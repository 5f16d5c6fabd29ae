//! The cache fence in PostgreSQL: the cache epoch and the instances' read leases.
//!
//! A lease renewal share-locks the epoch row and a bump updates it, so the two are
//! serialised: a renewal that commits before a bump carries the old epoch and is seen by the
//! bumper's lease check; one that commits after it carries the new epoch. Lease times are
//! PostgreSQL's clock on both sides, so instances' clocks do not matter.

use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;
use waiaas_domain::RepoError;
use waiaas_domain::ports::CacheFence;

use crate::Postgres;
use crate::error::RepoContext as _;

const RENEW: &str = "WITH e AS (SELECT epoch FROM cache_epoch WHERE id = 1 FOR SHARE) \
INSERT INTO cache_leases (instance_id, epoch, lease_until, renewed_at) \
SELECT $1, e.epoch, now() + $2 * interval '1 millisecond', now() FROM e \
ON CONFLICT (instance_id) DO UPDATE SET epoch = EXCLUDED.epoch, lease_until = EXCLUDED.lease_until, renewed_at = EXCLUDED.renewed_at \
RETURNING epoch";

const RELEASE: &str = "UPDATE cache_leases SET lease_until = least(lease_until, clock_timestamp()) WHERE instance_id = $1";

const BUMP: &str =
    "UPDATE cache_epoch SET epoch = epoch + 1, bumped_at = now() WHERE id = 1 RETURNING epoch";

const OLD_LEASES: &str = "SELECT coalesce(ceil(extract(epoch FROM max(lease_until) - clock_timestamp()) * 1000), 0)::bigint AS wait_ms \
FROM cache_leases WHERE epoch < $1 AND lease_until > clock_timestamp()";

/// Drops leases of instances gone for a day, so the table stays small.
const FORGET: &str = "DELETE FROM cache_leases WHERE lease_until < now() - interval '1 day'";

impl Postgres {
    async fn scalar(
        &self,
        sql: &str,
        values: Vec<sea_orm::Value>,
        col: &str,
        what: &'static str,
    ) -> Result<i64, RepoError> {
        self.db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ))
            .await
            .repo(what)?
            .ok_or_else(|| RepoError(anyhow::anyhow!("{what}: no row")))?
            .try_get("", col)
            .repo(what)
    }
}

#[async_trait]
impl CacheFence for Postgres {
    async fn renew_lease(&self, instance: Uuid, ttl: Duration) -> Result<i64, RepoError> {
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.scalar(
            RENEW,
            vec![instance.into(), ms.into()],
            "epoch",
            "renewing the cache lease",
        )
        .await
    }

    async fn release_lease(&self, instance: Uuid) -> Result<(), RepoError> {
        self.db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                RELEASE,
                [instance.into()],
            ))
            .await
            .repo("releasing the cache lease")?;
        Ok(())
    }

    async fn bump(&self) -> Result<i64, RepoError> {
        let epoch = self
            .scalar(BUMP, vec![], "epoch", "bumping the cache epoch")
            .await?;
        // Housekeeping rides along with the (rare) bump.
        let _ = self.db.execute_unprepared(FORGET).await;
        Ok(epoch)
    }

    async fn wait_for_old_leases(&self, epoch: i64) -> Result<Duration, RepoError> {
        let ms = self
            .scalar(
                OLD_LEASES,
                vec![epoch.into()],
                "wait_ms",
                "reading cache leases",
            )
            .await?;
        Ok(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
    }
}
