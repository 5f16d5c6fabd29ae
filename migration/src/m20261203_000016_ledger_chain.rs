//! A tamper-evident ledger: every transaction (its fields that never change), every ledger
//! entry and every audit row is sealed into one hash chain, `hash = SHA-256(previous hash ‖
//! kind ‖ canonical encoding of the row)`, by a sealer off the request path.
//!
//! Order: every sealed row carries the id of the PostgreSQL transaction that wrote it
//! (`xid`: the 64-bit `xid8`, which never wraps, kept as a `BIGINT` so that clients reading
//! `*` meet no type they must look up). The sealer only seals rows whose writing
//! transaction is older than every transaction still running (`pg_snapshot_xmin`): that set
//! is final, no row can join it later, so the chain follows `(xid, kind, id)` strictly and a
//! row committed late is never skipped. Rows written before this migration read `xid = 1`
//! (sealed first, in id order) without rewriting the tables.
//!
//! `ledger_chain` is append-only like the ledger; `ledger_chain_head` holds the last sealed
//! position, its hash, and the `(xid, kind, id)` cursor the next batch starts after.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
ALTER TABLE transactions ADD COLUMN xid BIGINT NOT NULL DEFAULT 1;
ALTER TABLE transactions ALTER COLUMN xid SET DEFAULT pg_current_xact_id()::text::bigint;
ALTER TABLE ledger_entries ADD COLUMN xid BIGINT NOT NULL DEFAULT 1;
ALTER TABLE ledger_entries ALTER COLUMN xid SET DEFAULT pg_current_xact_id()::text::bigint;
ALTER TABLE audit_logs ADD COLUMN xid BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_logs ALTER COLUMN xid SET DEFAULT pg_current_xact_id()::text::bigint;
CREATE INDEX transactions_xid_idx ON transactions (xid, id);
CREATE INDEX ledger_entries_xid_idx ON ledger_entries (xid, id);
CREATE INDEX audit_logs_xid_idx ON audit_logs (xid, id);
CREATE TABLE ledger_chain (
    position  BIGINT PRIMARY KEY CHECK (position > 0),
    kind      TEXT NOT NULL CHECK (kind IN ('transaction', 'ledger_entry', 'audit_log')),
    row_id    TEXT NOT NULL,
    hash      BYTEA NOT NULL CHECK (length(hash) = 32),
    sealed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE ledger_chain_head (
    id          SMALLINT PRIMARY KEY CHECK (id = 1),
    position    BIGINT NOT NULL DEFAULT 0,
    hash        BYTEA NOT NULL DEFAULT decode(repeat('00', 32), 'hex'),
    cursor_xid  BIGINT NOT NULL DEFAULT 0,
    cursor_kind SMALLINT NOT NULL DEFAULT 0,
    cursor_id   TEXT NOT NULL DEFAULT '',
    sealed_at   TIMESTAMPTZ
);
INSERT INTO ledger_chain_head (id) VALUES (1);
CREATE TRIGGER ledger_chain_append_only BEFORE UPDATE OR DELETE ON ledger_chain
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER ledger_chain_no_truncate BEFORE TRUNCATE ON ledger_chain
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate()
";

pub(crate) const DOWN: &str = r"
DROP TABLE ledger_chain_head;
DROP TABLE ledger_chain;
DROP INDEX audit_logs_xid_idx;
DROP INDEX ledger_entries_xid_idx;
DROP INDEX transactions_xid_idx;
ALTER TABLE audit_logs DROP COLUMN xid;
ALTER TABLE ledger_entries DROP COLUMN xid;
ALTER TABLE transactions DROP COLUMN xid
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
