//! The audit trail and owners' notifications.
//!
//! Audit rows reference nothing: they are an append-only record that must outlive (and never
//! lock) the rows they describe. The version of an owner's unread count is
//! `owners.notifications_version`, bumped under the owner's row lock in the transaction that
//! changes a notification, so versions follow commit order.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
CREATE TABLE audit_logs (
    id             UUID PRIMARY KEY,
    owner_id       UUID,
    actor_type     TEXT NOT NULL CHECK (actor_type IN ('owner', 'agent', 'system')),
    actor_id       UUID,
    action         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    old_value      JSONB,
    new_value      JSONB,
    request_id     TEXT,
    ip             INET,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_owner_id_idx ON audit_logs (owner_id, id DESC);
CREATE INDEX audit_logs_resource_idx ON audit_logs (resource_type, resource_id);
CREATE INDEX audit_logs_actor_idx ON audit_logs (actor_type, actor_id);
CREATE INDEX audit_logs_created_at_idx ON audit_logs (created_at);

CREATE TABLE notifications (
    id              UUID PRIMARY KEY,
    owner_id        UUID NOT NULL REFERENCES owners (id),
    kind            TEXT NOT NULL CHECK (kind IN ('approval_requested', 'transfer_denied')),
    wallet_id       UUID NOT NULL REFERENCES wallets (id),
    transaction_id  UUID NOT NULL REFERENCES transactions (id),
    message         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    read_at         TIMESTAMPTZ
);
CREATE INDEX notifications_owner_id_idx ON notifications (owner_id, id DESC);
CREATE INDEX notifications_unread_idx ON notifications (owner_id) WHERE read_at IS NULL;
CREATE INDEX notifications_wallet_id_idx ON notifications (wallet_id);
CREATE INDEX notifications_transaction_id_idx ON notifications (transaction_id);
CREATE INDEX notifications_created_at_idx ON notifications (created_at)
";

pub(crate) const DOWN: &str = r"
DROP TABLE notifications;
DROP TABLE audit_logs
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
