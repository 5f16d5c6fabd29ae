//! Webhooks: an owner's endpoints, and one delivery per (endpoint, event), created when the
//! relay places the event (in the same statement, so exactly once). Deliveries of one
//! endpoint and one wallet go out in order: only the oldest pending one of each is due.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
CREATE TABLE webhooks (
    id          UUID PRIMARY KEY,
    owner_id    UUID NOT NULL REFERENCES owners (id),
    url         TEXT NOT NULL CHECK (length(url) <= 2048),
    events      TEXT[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 50),
    description TEXT CHECK (length(description) <= 500),
    secret      TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT true,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhooks_owner_idx ON webhooks (owner_id, created_at DESC, id DESC);
CREATE TABLE webhook_deliveries (
    id               UUID PRIMARY KEY,
    webhook_id       UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq        BIGINT NOT NULL,
    event_type       TEXT NOT NULL,
    wallet_id        UUID NOT NULL,
    transaction_id   UUID NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error       TEXT,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    claimed_until    TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    UNIQUE (webhook_id, event_seq)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_queue_idx ON webhook_deliveries (webhook_id, wallet_id, event_seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (webhook_id, event_seq DESC);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_seq);
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
    'approval_requested', 'transfer_denied', 'hold_placed', 'hold_captured', 'hold_voided',
    'hold_expired', 'approval_expired', 'webhook_failed'))
";

pub(crate) const DOWN: &str = r"
DELETE FROM notifications WHERE kind = 'webhook_failed';
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
    'approval_requested', 'transfer_denied', 'hold_placed', 'hold_captured', 'hold_voided',
    'hold_expired', 'approval_expired'));
DROP TABLE webhook_deliveries;
DROP TABLE webhooks
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
