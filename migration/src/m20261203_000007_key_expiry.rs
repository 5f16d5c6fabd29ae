//! Agent API keys can expire: `expires_at` (null: never). An expired key authenticates
//! nothing and opens no session; a session opened with it ends when the key does.
//!
//! `down` cannot keep an expiry without the column, and must not turn an expiring key into
//! one that never expires: it revokes every key that had an expiry (at its expiry if that has
//! passed, else now) before dropping the column.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
ALTER TABLE api_keys ADD COLUMN expires_at TIMESTAMPTZ
";

pub(crate) const DOWN: &str = r"
UPDATE api_keys SET revoked_at = LEAST(expires_at, now())
    WHERE expires_at IS NOT NULL AND revoked_at IS NULL;
ALTER TABLE api_keys DROP COLUMN expires_at
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
