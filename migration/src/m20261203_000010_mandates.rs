//! Mandates: an owner's pre-approval of an agent's spending from one wallet (a payee or any,
//! an amount per use, a number of uses, a total, an expiry). A spend that names one and fits
//! it needs no approval; its use is counted (`uses_left`, `remaining`) in the spend's commit,
//! under the mandate's row lock (taken after the wallets', before the budgets').

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
CREATE TABLE mandates (
    id            UUID PRIMARY KEY,
    wallet_id     UUID NOT NULL REFERENCES wallets (id),
    owner_id      UUID NOT NULL,
    asset         TEXT NOT NULL,
    max_amount    BIGINT NOT NULL CHECK (max_amount > 0),
    total_amount  BIGINT CHECK (total_amount > 0),
    remaining     BIGINT CHECK (remaining >= 0 AND remaining <= total_amount),
    max_uses      INTEGER NOT NULL CHECK (max_uses > 0),
    uses_left     INTEGER NOT NULL CHECK (uses_left >= 0 AND uses_left <= max_uses),
    to_wallet_id  UUID REFERENCES wallets (id),
    destination   TEXT,
    expires_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    CHECK ((total_amount IS NULL) = (remaining IS NULL)),
    CHECK (to_wallet_id IS NULL OR destination IS NULL),
    CHECK (to_wallet_id IS DISTINCT FROM wallet_id)
);
CREATE INDEX mandates_wallet_idx ON mandates (wallet_id, created_at DESC, id DESC);
ALTER TABLE transactions ADD COLUMN mandate_id UUID REFERENCES mandates (id)
";

pub(crate) const DOWN: &str = r"
ALTER TABLE transactions DROP COLUMN mandate_id;
DROP TABLE mandates
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
