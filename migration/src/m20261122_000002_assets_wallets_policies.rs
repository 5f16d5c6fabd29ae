//! Assets (seeded), wallets with their balance and version, and wallet policies.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
CREATE TABLE assets (
    code        TEXT PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9]{1,11}$'),
    name        TEXT NOT NULL,
    decimals    SMALLINT NOT NULL CHECK (decimals BETWEEN 0 AND 18),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO assets (code, name, decimals) VALUES
    ('USD', 'US dollar', 2),
    ('EUR', 'Euro', 2),
    ('GBP', 'Pound sterling', 2),
    ('JPY', 'Japanese yen', 0),
    ('USDC', 'USD Coin', 6),
    ('BTC', 'Bitcoin (satoshi)', 8),
    ('ETH', 'Ether (gwei)', 9);

CREATE TABLE wallets (
    id          UUID PRIMARY KEY,
    agent_id    UUID NOT NULL REFERENCES agents (id),
    owner_id    UUID NOT NULL REFERENCES owners (id),
    asset       TEXT NOT NULL REFERENCES assets (code),
    name        TEXT CHECK (char_length(name) BETWEEN 1 AND 100),
    balance     BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX wallets_agent_id_idx ON wallets (agent_id);
CREATE INDEX wallets_owner_id_idx ON wallets (owner_id, created_at);
CREATE INDEX wallets_asset_idx ON wallets (asset);
CREATE INDEX wallets_created_at_idx ON wallets (created_at);

CREATE TABLE wallet_policies (
    wallet_id   UUID PRIMARY KEY REFERENCES wallets (id),
    rules       JSONB NOT NULL,
    version     BIGINT NOT NULL CHECK (version > 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX wallet_policies_rules_gin ON wallet_policies USING GIN (rules)
";

pub(crate) const DOWN: &str = r"
DROP TABLE wallet_policies;
DROP TABLE wallets;
DROP TABLE assets
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
