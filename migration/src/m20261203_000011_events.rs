//! The transactional outbox: every change of a transaction (insert, or a new status) writes
//! an `events` row in its own PostgreSQL transaction, by trigger, so no code path can commit
//! a change without its event, or an event without its change. The relay places committed
//! events in the stream (`seq`) one batch at a time, serialised on `event_sequencer`'s row,
//! so a reader that has seen place `n` never finds a new event below `n` later.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
CREATE SEQUENCE event_seq AS BIGINT;
CREATE TABLE events (
    id             BIGSERIAL PRIMARY KEY,
    seq            BIGINT UNIQUE,
    type           TEXT NOT NULL,
    owner_id       UUID NOT NULL,
    from_wallet_id UUID,
    to_wallet_id   UUID,
    transaction_id UUID NOT NULL,
    payload        JSONB NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_unplaced_idx ON events (id) WHERE seq IS NULL;
CREATE INDEX events_from_idx ON events (from_wallet_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX events_to_idx ON events (to_wallet_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX events_created_idx ON events (created_at);
CREATE TABLE event_sequencer (
    id             SMALLINT PRIMARY KEY CHECK (id = 1),
    ran_at         TIMESTAMPTZ,
    pruned_through BIGINT NOT NULL DEFAULT 0
);
INSERT INTO event_sequencer (id) VALUES (1)
";

/// The trigger function, run on its own (its body holds `;`).
pub(crate) const FUNCTION: &str = r"
CREATE FUNCTION transaction_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (type, owner_id, from_wallet_id, to_wallet_id, transaction_id, payload,
                        created_at)
    VALUES (CASE WHEN NEW.kind = 'hold'
                 THEN 'hold.' || CASE NEW.status WHEN 'held' THEN 'placed' ELSE NEW.status END
                 ELSE 'transaction.' || NEW.status END,
            NEW.owner_id, NEW.from_wallet_id, NEW.to_wallet_id, NEW.id, to_jsonb(NEW),
            NEW.updated_at);
    RETURN NULL;
END
$$
";

pub(crate) const TRIGGERS: &str = r"
CREATE TRIGGER transactions_insert_event AFTER INSERT ON transactions
    FOR EACH ROW EXECUTE FUNCTION transaction_event();
CREATE TRIGGER transactions_status_event AFTER UPDATE OF status ON transactions
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION transaction_event()
";

pub(crate) const DOWN: &str = r"
DROP TRIGGER transactions_status_event ON transactions;
DROP TRIGGER transactions_insert_event ON transactions;
DROP FUNCTION transaction_event();
DROP TABLE event_sequencer;
DROP TABLE events;
DROP SEQUENCE event_seq
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, UP).await?;
        manager
            .get_connection()
            .execute_unprepared(FUNCTION)
            .await?;
        crate::run(manager, TRIGGERS).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, DOWN).await
    }
}
