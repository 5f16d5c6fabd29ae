//! Transactions (with their decision and idempotency key), the double-entry ledger, and the
//! per-wallet daily spend that makes the daily-limit check independent of history size.
//!
//! `asset` and `owner_id` on transactions and ledger entries are copies of the wallet's
//! (immutable) columns, which carry the foreign keys. They deliberately have none of their
//! own: every posting would otherwise take a KEY SHARE lock on the same `assets` row and the
//! same `owners` row, turning them into hot multixact rows under concurrent transfers.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
CREATE TABLE transactions (
    id                       UUID PRIMARY KEY,
    kind                     TEXT NOT NULL CHECK (kind IN ('deposit', 'transfer', 'payment')),
    status                   TEXT NOT NULL CHECK (status IN ('pending_approval', 'completed', 'rejected', 'denied', 'failed')),
    asset                    TEXT NOT NULL,
    amount                   BIGINT NOT NULL CHECK (amount > 0),
    from_wallet_id           UUID REFERENCES wallets (id),
    to_wallet_id             UUID REFERENCES wallets (id),
    destination              TEXT,
    memo                     TEXT,
    metadata                 JSONB NOT NULL DEFAULT '{}'::jsonb,
    owner_id                 UUID NOT NULL,
    initiator_type           TEXT NOT NULL CHECK (initiator_type IN ('owner', 'agent', 'system')),
    initiator_id             UUID,
    idempotency_key          TEXT,
    request_hash             TEXT,
    decision_rule            TEXT,
    reason                   TEXT,
    budget_daily_remaining   BIGINT,
    budget_hourly_remaining  INTEGER,
    created_at               TIMESTAMPTZ NOT NULL,
    updated_at               TIMESTAMPTZ NOT NULL,
    posted_at                TIMESTAMPTZ,
    CHECK (kind <> 'deposit' OR (from_wallet_id IS NULL AND to_wallet_id IS NOT NULL AND destination IS NULL)),
    CHECK (kind <> 'transfer' OR (from_wallet_id IS NOT NULL AND to_wallet_id IS NOT NULL AND from_wallet_id <> to_wallet_id AND destination IS NULL)),
    CHECK (kind <> 'payment' OR (from_wallet_id IS NOT NULL AND to_wallet_id IS NULL AND destination IS NOT NULL)),
    CHECK ((status = 'completed') = (posted_at IS NOT NULL)),
    CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
);
CREATE UNIQUE INDEX transactions_idempotency_key_uq
    ON transactions (initiator_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX transactions_from_wallet_idx ON transactions (from_wallet_id, created_at DESC, id DESC);
CREATE INDEX transactions_to_wallet_idx ON transactions (to_wallet_id, created_at DESC, id DESC);
CREATE INDEX transactions_posted_idx ON transactions (from_wallet_id, posted_at) WHERE posted_at IS NOT NULL;
CREATE INDEX transactions_owner_id_idx ON transactions (owner_id, created_at DESC);
CREATE INDEX transactions_status_idx ON transactions (status, created_at) WHERE status = 'pending_approval';
CREATE INDEX transactions_created_at_idx ON transactions (created_at);
CREATE INDEX transactions_metadata_gin ON transactions USING GIN (metadata jsonb_path_ops);

CREATE TABLE ledger_entries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  UUID NOT NULL REFERENCES transactions (id),
    wallet_id       UUID REFERENCES wallets (id),
    account         TEXT NOT NULL,
    asset           TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount <> 0),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((wallet_id IS NOT NULL) = (account LIKE 'wallet:%'))
);
CREATE INDEX ledger_entries_transaction_id_idx ON ledger_entries (transaction_id);
CREATE INDEX ledger_entries_wallet_id_idx ON ledger_entries (wallet_id);
CREATE INDEX ledger_entries_created_at_idx ON ledger_entries (created_at);

CREATE TABLE wallet_daily_spend (
    wallet_id   UUID NOT NULL REFERENCES wallets (id),
    day         DATE NOT NULL,
    amount      BIGINT NOT NULL DEFAULT 0 CHECK (amount >= 0),
    count       INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (wallet_id, day)
)
";

pub(crate) const DOWN: &str = r"
DROP TABLE wallet_daily_spend;
DROP TABLE ledger_entries;
DROP TABLE transactions
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
