//! The cache fence in PostgreSQL: the cache epoch and the instances' read leases.
//!
//! A renewal share-locks the epoch row and grants nothing while it is marked stale; marking
//! it stale updates the row. The two are therefore serialised: a renewal committed before a
//! mark is seen (and waited for) by the marker; one after it finds the mark, and its
//! instance stops serving cached reads before it starts a new epoch and leases that.
//!
//! The marker reads the leases to wait for in a statement of its own, after the mark: a
//! statement's snapshot is taken when it starts, so a mark that had to wait for a renewal's
//! share lock would not see that renewal's lease in its own statement. And it waits for the
//! longest live lease whatever its epoch: a renewal may have moved a lease to a new epoch
//! while its instance still serves the old one until the answer arrives. Lease times are
//! PostgreSQL's clock on both sides, so instances' clocks do not matter.

use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;
use waiaas_domain::RepoError;
use waiaas_domain::ports::CacheFence;

use crate::error::RepoContext as _;
use crate::{Postgres, Work};

/// Grants or renews a lease under the current epoch, unless it is marked stale or another
/// instance blocks leases (no row then).
const RENEW: &str = "WITH e AS (SELECT epoch FROM cache_epoch WHERE id = 1 AND NOT dirty FOR SHARE) \
INSERT INTO cache_leases (instance_id, epoch, lease_until, renewed_at) \
SELECT $1, e.epoch, now() + $2 * interval '1 millisecond', now() FROM e \
WHERE NOT EXISTS (SELECT 1 FROM cache_leases b WHERE b.instance_id <> $1 AND b.blocks_until > now()) \
ON CONFLICT (instance_id) DO UPDATE SET epoch = EXCLUDED.epoch, lease_until = EXCLUDED.lease_until, renewed_at = EXCLUDED.renewed_at \
RETURNING epoch";

/// Starts a new epoch if the current one is marked stale.
const BUMP: &str = "UPDATE cache_epoch SET epoch = epoch + 1, dirty = false, bumped_at = now() WHERE id = 1 AND dirty";

const RELEASE: &str = "UPDATE cache_leases SET lease_until = least(lease_until, clock_timestamp()) WHERE instance_id = $1";

/// Marks the epoch stale (a no-op, without a row lock, when it already is) and releases this
/// instance's lease; returns the current epoch. The data-modifying CTEs run whether or not
/// the final SELECT reads them.
const MARK: &str = "WITH mark AS (UPDATE cache_epoch SET dirty = true WHERE id = 1 AND NOT dirty RETURNING epoch), \
released AS (UPDATE cache_leases SET lease_until = least(lease_until, clock_timestamp()) WHERE instance_id = $1 RETURNING 1) \
SELECT coalesce((SELECT epoch FROM mark), (SELECT epoch FROM cache_epoch WHERE id = 1)) AS epoch";

/// Marks the epoch stale, ends this instance's lease, and blocks every lease until `$2` ms
/// from now; returns the epoch. Updating the epoch row serialises it with renewals.
const BLOCK: &str = "WITH mark AS (UPDATE cache_epoch SET dirty = true WHERE id = 1 RETURNING epoch) \
INSERT INTO cache_leases (instance_id, epoch, lease_until, renewed_at, blocks_until) \
SELECT $1, mark.epoch, clock_timestamp(), now(), now() + $2 * interval '1 millisecond' FROM mark \
ON CONFLICT (instance_id) DO UPDATE SET blocks_until = EXCLUDED.blocks_until, \
lease_until = least(cache_leases.lease_until, clock_timestamp()) \
RETURNING epoch";

const UNBLOCK: &str = "UPDATE cache_leases SET blocks_until = NULL WHERE instance_id = $1";

/// How long until every other instance's live lease has ended, whatever its epoch.
const WAIT: &str = "SELECT coalesce(ceil(extract(epoch FROM max(lease_until) - clock_timestamp()) * 1000), 0)::bigint AS wait_ms \
FROM cache_leases WHERE instance_id <> $1 AND lease_until > clock_timestamp()";

/// Drops leases of instances gone for a day, so the table stays small.
const FORGET: &str = "DELETE FROM cache_leases WHERE lease_until < now() - interval '1 day'";

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[async_trait]
impl CacheFence for Postgres {
    async fn renew_lease(&self, instance: Uuid, ttl: Duration) -> Result<Option<i64>, RepoError> {
        self.run(Work::Read, move || self.fence_renew(instance, ttl))
            .await
    }

    async fn bump_epoch(&self) -> Result<(), RepoError> {
        self.run(Work::Read, move || self.fence_bump()).await
    }

    async fn release_lease(&self, instance: Uuid) -> Result<(), RepoError> {
        self.run(Work::Read, move || self.fence_release(instance))
            .await
    }

    async fn mark_stale(&self, instance: Uuid) -> Result<i64, RepoError> {
        self.run(Work::Read, move || self.fence_mark(instance))
            .await
    }

    async fn block_leases(&self, instance: Uuid, ttl: Duration) -> Result<i64, RepoError> {
        self.run(Work::Read, move || self.fence_block(instance, ttl))
            .await
    }

    async fn unblock_leases(&self, instance: Uuid) -> Result<(), RepoError> {
        self.run(Work::Read, move || async move {
            self.db
                .execute_raw(stmt(UNBLOCK, vec![instance.into()]))
                .await
                .repo("unblocking cache leases")?;
            Ok(())
        })
        .await
    }

    async fn lease_wait(&self, instance: Uuid) -> Result<Duration, RepoError> {
        self.run(Work::Read, move || self.fence_wait(instance))
            .await
    }
}

impl Postgres {
    async fn fence_renew(&self, instance: Uuid, ttl: Duration) -> Result<Option<i64>, RepoError> {
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let row = self
            .db
            .query_one_raw(stmt(RENEW, vec![instance.into(), ms.into()]))
            .await
            .repo("renewing the cache lease")?;
        row.map(|r| r.try_get("", "epoch").repo("decoding the cache epoch"))
            .transpose()
    }

    async fn fence_bump(&self) -> Result<(), RepoError> {
        let bumped = self
            .db
            .execute_raw(stmt(BUMP, vec![]))
            .await
            .repo("bumping the cache epoch")?;
        if bumped.rows_affected() > 0 {
            tracing::info!("Cache epoch bumped");
            let _ = self.db.execute_unprepared(FORGET).await;
        }
        Ok(())
    }

    async fn fence_release(&self, instance: Uuid) -> Result<(), RepoError> {
        self.db
            .execute_raw(stmt(RELEASE, vec![instance.into()]))
            .await
            .repo("releasing the cache lease")?;
        Ok(())
    }

    async fn fence_mark(&self, instance: Uuid) -> Result<i64, RepoError> {
        self.db
            .query_one_raw(stmt(MARK, vec![instance.into()]))
            .await
            .repo("marking the cache epoch stale")?
            .ok_or_else(|| RepoError(anyhow::anyhow!("marking the cache epoch returned no row")))?
            .try_get("", "epoch")
            .repo("decoding the cache epoch")
    }

    async fn fence_block(&self, instance: Uuid, ttl: Duration) -> Result<i64, RepoError> {
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.db
            .query_one_raw(stmt(BLOCK, vec![instance.into(), ms.into()]))
            .await
            .repo("blocking cache leases")?
            .ok_or_else(|| RepoError(anyhow::anyhow!("blocking cache leases returned no row")))?
            .try_get("", "epoch")
            .repo("decoding the cache epoch")
    }

    async fn fence_wait(&self, instance: Uuid) -> Result<Duration, RepoError> {
        let row = self
            .db
            .query_one_raw(stmt(WAIT, vec![instance.into()]))
            .await
            .repo("reading cache leases")?
            .ok_or_else(|| RepoError(anyhow::anyhow!("lease query returned no row")))?;
        Ok(millis(
            row.try_get("", "wait_ms").repo("decoding the lease wait")?,
        ))
    }
}
