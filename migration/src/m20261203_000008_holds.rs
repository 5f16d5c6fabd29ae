//! Holds (two-phase payments): an agent reserves an amount, then captures at most that much
//! or voids it; an unused hold expires.
//!
//! A hold is a row of `transactions` with `kind = 'hold'`: it shares the agent's idempotency
//! keys, the owner's approval flow, notifications and transaction search with every other
//! posting. It writes no ledger entry. While it is `held`, its amount counts in the paying
//! wallet's `held` column (`CHECK (0 <= held AND held <= balance)`: `balance - held` is what
//! the wallet can still spend) and in the wallet's spend of the day it was held (`held_at`).
//! A capture is a second, completed transaction (`transfer` or `payment`) pointing back with
//! `hold_id` (unique: at most one capture per hold), and releases the rest.
//!
//! `down` cannot keep holds in a schema without them: it removes hold rows and their
//! notifications (captures stay, as the completed transactions they are), gives the spend of
//! open holds back to their days, and zeroes `held`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const UP: &str = r"
ALTER TABLE wallets ADD COLUMN held BIGINT NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD CONSTRAINT wallets_held_check CHECK (0 <= held AND held <= balance);
ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check
    CHECK (kind IN ('deposit', 'transfer', 'payment', 'sweep', 'hold'));
ALTER TABLE transactions DROP CONSTRAINT transactions_status_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_status_check
    CHECK (status IN ('pending_approval', 'completed', 'rejected', 'denied', 'failed', 'held', 'captured', 'voided', 'expired'));
ALTER TABLE transactions
    ADD COLUMN expires_at TIMESTAMPTZ,
    ADD COLUMN held_at TIMESTAMPTZ,
    ADD COLUMN captured BIGINT,
    ADD COLUMN hold_id UUID REFERENCES transactions (id);
ALTER TABLE transactions ADD CONSTRAINT transactions_hold_check CHECK (kind <> 'hold' OR (
    from_wallet_id IS NOT NULL AND (to_wallet_id IS NULL) <> (destination IS NULL)
    AND from_wallet_id IS DISTINCT FROM to_wallet_id AND expires_at IS NOT NULL
    AND (status NOT IN ('held', 'captured') OR held_at IS NOT NULL)
    AND (held_at IS NULL OR status IN ('held', 'captured', 'voided', 'expired'))
    AND (captured IS NOT NULL) = (status IN ('captured', 'voided', 'expired'))
    AND captured BETWEEN 0 AND amount));
ALTER TABLE transactions ADD CONSTRAINT transactions_hold_only_check CHECK (kind = 'hold' OR (
    expires_at IS NULL AND held_at IS NULL AND captured IS NULL
    AND status NOT IN ('held', 'captured', 'voided', 'expired')));
ALTER TABLE transactions ADD CONSTRAINT transactions_capture_check
    CHECK (hold_id IS NULL OR (kind IN ('transfer', 'payment') AND status = 'completed'));
CREATE UNIQUE INDEX transactions_capture_uq ON transactions (hold_id) WHERE hold_id IS NOT NULL;
CREATE INDEX transactions_open_holds_idx ON transactions (expires_at, from_wallet_id) WHERE status = 'held';
CREATE INDEX transactions_held_at_idx ON transactions (from_wallet_id, held_at) WHERE held_at IS NOT NULL;
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
    'approval_requested', 'transfer_denied', 'hold_placed', 'hold_captured', 'hold_voided', 'hold_expired'))
";

pub(crate) const DOWN: &str = r"
UPDATE wallet_daily_spend s SET amount = s.amount - o.amount
    FROM (SELECT from_wallet_id, (held_at AT TIME ZONE 'UTC')::date AS day, sum(amount) AS amount
          FROM transactions WHERE status = 'held' GROUP BY 1, 2) o
    WHERE s.wallet_id = o.from_wallet_id AND s.day = o.day;
UPDATE wallets SET held = 0, version = version + 1 WHERE held <> 0;
DELETE FROM notifications WHERE kind IN ('hold_placed', 'hold_captured', 'hold_voided', 'hold_expired')
    OR transaction_id IN (SELECT id FROM transactions WHERE kind = 'hold');
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN ('approval_requested', 'transfer_denied'));
UPDATE transactions SET hold_id = NULL WHERE hold_id IS NOT NULL;
DELETE FROM transactions WHERE kind = 'hold';
DROP INDEX transactions_held_at_idx;
DROP INDEX transactions_open_holds_idx;
DROP INDEX transactions_capture_uq;
ALTER TABLE transactions DROP CONSTRAINT transactions_capture_check;
ALTER TABLE transactions DROP CONSTRAINT transactions_hold_only_check;
ALTER TABLE transactions DROP CONSTRAINT transactions_hold_check;
ALTER TABLE transactions DROP COLUMN hold_id, DROP COLUMN captured, DROP COLUMN held_at, DROP COLUMN expires_at;
ALTER TABLE transactions DROP CONSTRAINT transactions_status_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_status_check
    CHECK (status IN ('pending_approval', 'completed', 'rejected', 'denied', 'failed'));
ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check CHECK (kind IN ('deposit', 'transfer', 'payment', 'sweep'));
ALTER TABLE wallets DROP CONSTRAINT wallets_held_check;
ALTER TABLE wallets DROP COLUMN held
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
