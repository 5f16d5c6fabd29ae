//! Agent API keys can expire: `expires_at` (null: never). An expired key authenticates
//! nothing and opens no session; a session opened with it ends when the key does.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
ALTER TABLE api_keys ADD COLUMN expires_at TIMESTAMPTZ
";

pub(crate) const DOWN: &str = r"
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
