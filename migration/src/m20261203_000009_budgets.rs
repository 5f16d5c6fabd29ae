//! Budgets above the wallet: an agent's and an owner's limits per asset (per transaction,
//! per UTC day, per UTC calendar month), over every wallet below them. What was spent under
//! them is not stored twice: it is the sum of `wallet_daily_spend` over their wallets, read
//! under the budget row's lock (a spend locks its wallets, then the agent's budget row, then
//! the owner's).
//!
//! A transaction records the level whose rule denied it (`decision_level`) and the whole
//! budget it was decided with (`budget`, JSON: the wallet's daily, hourly and monthly
//! remainders and the agent's and owner's). A transaction waiting for approval gets the
//! deadline of its wallet's `approval_timeout_s` (`approval_deadline`); past it, it is
//! `expired` and nothing moves.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
CREATE TABLE agent_budgets (
    agent_id             UUID NOT NULL REFERENCES agents (id),
    asset                TEXT NOT NULL REFERENCES assets (code),
    max_per_transaction  BIGINT CHECK (max_per_transaction >= 0),
    daily_limit          BIGINT CHECK (daily_limit >= 0),
    monthly_limit        BIGINT CHECK (monthly_limit >= 0),
    updated_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agent_id, asset)
);
CREATE TABLE owner_budgets (
    owner_id             UUID NOT NULL REFERENCES owners (id),
    asset                TEXT NOT NULL REFERENCES assets (code),
    max_per_transaction  BIGINT CHECK (max_per_transaction >= 0),
    daily_limit          BIGINT CHECK (daily_limit >= 0),
    monthly_limit        BIGINT CHECK (monthly_limit >= 0),
    updated_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner_id, asset)
);
ALTER TABLE transactions
    ADD COLUMN budget JSONB,
    ADD COLUMN decision_level TEXT CHECK (decision_level IN ('wallet', 'agent', 'owner')),
    ADD COLUMN approval_deadline TIMESTAMPTZ;
ALTER TABLE transactions DROP CONSTRAINT transactions_hold_only_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_hold_only_check CHECK (kind = 'hold' OR (
    expires_at IS NULL AND held_at IS NULL AND captured IS NULL
    AND status NOT IN ('held', 'captured', 'voided')
    AND (status <> 'expired' OR approval_deadline IS NOT NULL)));
CREATE INDEX transactions_approval_deadline_idx ON transactions (approval_deadline)
    WHERE status = 'pending_approval' AND approval_deadline IS NOT NULL;
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
    'approval_requested', 'transfer_denied', 'hold_placed', 'hold_captured', 'hold_voided',
    'hold_expired', 'approval_expired'))
";

pub(crate) const DOWN: &str = r"
DELETE FROM notifications WHERE kind = 'approval_expired';
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
    'approval_requested', 'transfer_denied', 'hold_placed', 'hold_captured', 'hold_voided', 'hold_expired'));
UPDATE transactions SET status = 'rejected', reason = 'expired waiting for approval'
    WHERE kind <> 'hold' AND status = 'expired';
DROP INDEX transactions_approval_deadline_idx;
ALTER TABLE transactions DROP CONSTRAINT transactions_hold_only_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_hold_only_check CHECK (kind = 'hold' OR (
    expires_at IS NULL AND held_at IS NULL AND captured IS NULL
    AND status NOT IN ('held', 'captured', 'voided', 'expired')));
ALTER TABLE transactions DROP COLUMN approval_deadline, DROP COLUMN decision_level, DROP COLUMN budget;
DROP TABLE owner_budgets;
DROP TABLE agent_budgets
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
