//! Cheaper seals: one chain row per seal instead of one per sealed row. A seal now writes a
//! single `ledger_chain` row of kind `rows` covering every row it sealed, in chain order:
//! their kinds, their ids and each row's own hash (`SHA-256(kind ‖ 0 ‖ canonical
//! encoding)`, 32 bytes each, concatenated), with `position` the last row's position (so
//! positions still count rows) and `hash = SHA-256(previous hash ‖ "rows" ‖ 0 ‖ the row
//! hashes)`. The rows sealed one by one before this migration stay as they are and are
//! verified as before; the chain runs on from their last hash.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
ALTER TABLE ledger_chain DROP CONSTRAINT ledger_chain_kind_check;
ALTER TABLE ledger_chain ADD CONSTRAINT ledger_chain_kind_check
    CHECK (kind IN ('transaction', 'ledger_entry', 'audit_log', 'rows'));
ALTER TABLE ledger_chain ADD COLUMN row_kinds SMALLINT[];
ALTER TABLE ledger_chain ADD COLUMN row_ids TEXT[];
ALTER TABLE ledger_chain ADD COLUMN row_hashes BYTEA;
ALTER TABLE ledger_chain ADD CONSTRAINT ledger_chain_rows_shape CHECK (
    (kind = 'rows') = (row_ids IS NOT NULL)
    AND (kind <> 'rows' OR (
        cardinality(row_ids) > 0
        AND cardinality(row_kinds) = cardinality(row_ids)
        AND length(row_hashes) = 32 * cardinality(row_ids)
        AND position >= cardinality(row_ids))))
";

/// Going down removes the seals of many rows (the rows they sealed are sealed again, one by
/// one, by the next seal) and moves the head back to the last row sealed alone.
pub(crate) const DOWN: &str = r"
ALTER TABLE ledger_chain DISABLE TRIGGER ledger_chain_append_only;
DELETE FROM ledger_chain WHERE kind = 'rows';
ALTER TABLE ledger_chain ENABLE TRIGGER ledger_chain_append_only;
WITH last AS (SELECT * FROM ledger_chain ORDER BY position DESC LIMIT 1)
UPDATE ledger_chain_head SET
    position = COALESCE((SELECT position FROM last), 0),
    hash = COALESCE((SELECT hash FROM last), decode(repeat('00', 32), 'hex')),
    cursor_kind = COALESCE((SELECT CASE kind WHEN 'transaction' THEN 1 WHEN 'ledger_entry' THEN 2 ELSE 3 END FROM last), 0),
    cursor_id = COALESCE((SELECT row_id FROM last), ''),
    cursor_xid = COALESCE((SELECT CASE l.kind
        WHEN 'transaction' THEN (SELECT t.xid FROM transactions t WHERE t.id::text = l.row_id)
        WHEN 'ledger_entry' THEN (SELECT e.xid FROM ledger_entries e WHERE e.id::text = l.row_id)
        ELSE (SELECT a.xid FROM audit_logs a WHERE a.id::text = l.row_id) END FROM last l), 0),
    sealed_at = (SELECT sealed_at FROM last)
WHERE id = 1;
ALTER TABLE ledger_chain DROP CONSTRAINT ledger_chain_rows_shape;
ALTER TABLE ledger_chain DROP COLUMN row_hashes;
ALTER TABLE ledger_chain DROP COLUMN row_ids;
ALTER TABLE ledger_chain DROP COLUMN row_kinds;
ALTER TABLE ledger_chain DROP CONSTRAINT ledger_chain_kind_check;
ALTER TABLE ledger_chain ADD CONSTRAINT ledger_chain_kind_check
    CHECK (kind IN ('transaction', 'ledger_entry', 'audit_log'))
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
