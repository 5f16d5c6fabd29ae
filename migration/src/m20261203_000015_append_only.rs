//! The ledger, the audit trail and the events are append-only, for every role: a trigger
//! refuses `UPDATE`, `DELETE` and `TRUNCATE` on `ledger_entries`, `audit_logs` and `events`,
//! whoever asks, with two exceptions that are the service's own:
//!
//! - the events relay placing an event in the stream (`seq` set once, from `NULL`, nothing
//!   else changed);
//! - the events retention, which deletes old events only through `delete_events_before`, a
//!   `SECURITY DEFINER` function owned by the schema's owner (the application role may run it
//!   and has no `DELETE` on `events` itself).
//!
//! The grants that keep the application role from even asking are `waiaas db roles`'s.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The trigger functions and the retention function, each run on its own (their bodies hold
/// `;`).
pub(crate) const FUNCTIONS: [&str; 3] = [
    r"
CREATE FUNCTION refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'events'
       AND current_setting('waiaas.events_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
",
    r"
CREATE FUNCTION refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$
",
    r"
CREATE FUNCTION delete_events_before(before TIMESTAMPTZ, most INTEGER) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n BIGINT;
BEGIN
    PERFORM set_config('waiaas.events_retention', 'on', true);
    WITH d AS (DELETE FROM events WHERE id IN
                   (SELECT id FROM events WHERE created_at < before AND seq IS NOT NULL
                    ORDER BY seq LIMIT most)
               RETURNING seq),
         w AS (DELETE FROM webhook_deliveries
               WHERE event_seq IN (SELECT seq FROM d) AND status <> 'pending'),
         u AS (UPDATE event_sequencer
               SET pruned_through = GREATEST(pruned_through, (SELECT max(seq) FROM d))
               WHERE id = 1 AND EXISTS (SELECT 1 FROM d))
    SELECT count(*) INTO n FROM d;
    PERFORM set_config('waiaas.events_retention', 'off', true);
    RETURN n;
END
$$
",
];

pub(crate) const UP: &str = r"
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER events_append_only BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER events_placed_once BEFORE UPDATE ON events
    FOR EACH ROW WHEN (OLD.seq IS NOT NULL OR NEW.seq IS NULL
                       OR (to_jsonb(OLD) - 'seq') IS DISTINCT FROM (to_jsonb(NEW) - 'seq'))
    EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();
REVOKE ALL ON FUNCTION delete_events_before(TIMESTAMPTZ, INTEGER) FROM PUBLIC
";

pub(crate) const DOWN: &str = r"
DROP TRIGGER events_no_truncate ON events;
DROP TRIGGER audit_logs_no_truncate ON audit_logs;
DROP TRIGGER ledger_entries_no_truncate ON ledger_entries;
DROP TRIGGER events_placed_once ON events;
DROP TRIGGER events_append_only ON events;
DROP TRIGGER audit_logs_append_only ON audit_logs;
DROP TRIGGER ledger_entries_append_only ON ledger_entries;
DROP FUNCTION delete_events_before(TIMESTAMPTZ, INTEGER);
DROP FUNCTION refuse_truncate();
DROP FUNCTION refuse_rewrite()
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for function in FUNCTIONS {
            manager
                .get_connection()
                .execute_unprepared(function)
                .await?;
        }
        crate::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, DOWN).await
    }
}
