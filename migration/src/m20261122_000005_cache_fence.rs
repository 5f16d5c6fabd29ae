//! The cache fence: the current cache epoch and each instance's lease to serve cached reads.
//! A write whose cache update failed marks the epoch stale (`dirty`), so the next lease
//! renewal starts a new epoch, and waits until every lease of the stale epoch has ended: no
//! instance can then serve the entry it failed to replace.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
CREATE TABLE cache_epoch (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    epoch      BIGINT NOT NULL CHECK (epoch > 0),
    dirty      BOOLEAN NOT NULL DEFAULT false,
    bumped_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO cache_epoch (id, epoch) VALUES (1, 1);

CREATE TABLE cache_leases (
    instance_id  UUID PRIMARY KEY,
    epoch        BIGINT NOT NULL,
    lease_until  TIMESTAMPTZ NOT NULL,
    renewed_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX cache_leases_epoch_idx ON cache_leases (epoch, lease_until)
";

pub(crate) const DOWN: &str = r"
DROP TABLE cache_leases;
DROP TABLE cache_epoch
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, DOWN).await
    }
}
