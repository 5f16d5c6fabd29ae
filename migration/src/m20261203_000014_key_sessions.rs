//! A session remembers the API key it was opened with, so revoking that one key also ends
//! the sessions opened with it (sessions opened before this migration have no key recorded:
//! they end at their own expiry, at most `auth.session_ttl_s` later).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
ALTER TABLE sessions ADD COLUMN api_key_id UUID REFERENCES api_keys (id);
CREATE INDEX sessions_api_key_id_idx ON sessions (api_key_id)
";

pub(crate) const DOWN: &str = r"
DROP INDEX sessions_api_key_id_idx;
ALTER TABLE sessions DROP COLUMN api_key_id
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
