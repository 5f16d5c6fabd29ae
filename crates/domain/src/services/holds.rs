//! Holds (two-phase payments): an agent reserves an amount, captures at most that much, or
//! voids it; an unused hold expires and a sweeper releases it.

use std::time::Duration;

use serde::Serialize;

use super::Services;
use crate::errors::{AccessError, PostingError};
use crate::ids::{TransactionId, WalletId};
use crate::model::{
    AuditContext, PageRequest, Principal, Transaction, TransactionKind, TransactionPage,
    TransactionStatus, TxCursor, TxFilter,
};
use crate::money::Money;
use crate::ports::{CaptureCommand, HoldCommand, Idempotency, PostingOutcome, VoidCommand};
use crate::values::IdempotencyKey;

use super::payments::TransferRequest;

/// A hold's lifetime when the agent gives none.
pub const DEFAULT_HOLD_LIFETIME: Duration = Duration::from_secs(3600);
/// The longest a hold may live.
pub const MAX_HOLD_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// An agent's hold, as the client sent it: a transfer or payment to reserve now and capture
/// later.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRequest {
    /// What would be moved, to whom, with which key.
    pub spend: TransferRequest,
    /// Seconds until it expires if not captured (1 to 7 days; 3600 when absent).
    pub expires_in_s: Option<i64>,
}

/// An agent's capture of a hold, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRequest {
    /// The hold.
    pub hold_id: TransactionId,
    /// Minor units to capture, at most the held amount; everything when absent.
    pub amount: Option<i64>,
    /// The retry key.
    pub idempotency_key: Option<String>,
}

#[derive(Serialize)]
struct CaptureFingerprint {
    kind: &'static str,
    hold: TransactionId,
    amount: Option<i64>,
}

impl Services {
    /// Reserves an amount of a wallet the calling agent holds for a transfer or payment
    /// whose final amount it does not know yet. The wallet's policy decides as for a
    /// transfer, counting the held amount as spent from now on; what the wallet can spend
    /// (`available`) drops by it. A denial, a wait for approval or insufficient funds is
    /// recorded and returned as the outcome's status.
    ///
    /// # Errors
    /// As [`Services::transfer`], and `HoldLifetime` for a lifetime out of bounds.
    #[tracing::instrument(skip_all, fields(wallet_id = %req.spend.from_wallet_id))]
    pub async fn create_hold(
        &self,
        principal: &Principal,
        req: HoldRequest,
        audit: &AuditContext,
    ) -> Result<PostingOutcome, PostingError> {
        let seconds = req
            .expires_in_s
            .unwrap_or(DEFAULT_HOLD_LIFETIME.as_secs().cast_signed());
        let max = MAX_HOLD_LIFETIME.as_secs().cast_signed();
        if !(1..=max).contains(&seconds) {
            return Err(PostingError::HoldLifetime);
        }
        let spend = self
            .spend_command(principal, req.spend, "hold", Some(seconds), audit)
            .await?;
        let cmd = HoldCommand {
            expires_at: spend.now + chrono::Duration::seconds(seconds),
            spend,
        };
        let outcome = self.ports.transactions.post_hold(&cmd).await?;
        self.announce(&outcome);
        Ok(outcome)
    }

    /// Captures a hold of a wallet the calling agent holds: `amount` (at most the held
    /// amount; all of it when absent) moves to the hold's counterparty as a completed
    /// transaction, and the rest is released, to the wallet and to the budgets of the day
    /// it was held. A hold is captured at most once; the capture's key replays it.
    ///
    /// # Errors
    /// `Forbidden` for an owner, `InvalidAmount`, `MissingIdempotencyKey`, `HoldNotFound`,
    /// `HoldNotOpen`, `HoldExpired`, `CaptureExceedsHold`, `AgentNotActive`,
    /// `WalletClosed`, `BalanceOverflow`, `IdempotencyConflict`.
    #[tracing::instrument(skip_all, fields(hold_id = %req.hold_id))]
    pub async fn capture_hold(
        &self,
        principal: &Principal,
        req: CaptureRequest,
        audit: &AuditContext,
    ) -> Result<PostingOutcome, PostingError> {
        let Principal::Agent { agent_id, .. } = principal else {
            return Err(PostingError::Forbidden(
                "only the agent holding the wallet captures its holds",
            ));
        };
        let amount = req.amount.map(Money::positive).transpose()?;
        let key = req
            .idempotency_key
            .as_deref()
            .ok_or(PostingError::MissingIdempotencyKey)?;
        let idempotency = Idempotency::bind(
            IdempotencyKey::parse(key)?,
            &CaptureFingerprint {
                kind: "capture",
                hold: req.hold_id,
                amount: req.amount,
            },
        );
        let cmd = CaptureCommand {
            transaction_id: TransactionId::new(),
            hold_id: req.hold_id,
            amount,
            agent_id: *agent_id,
            idempotency,
            now: self.ports.clock.now(),
            audit: audit.clone(),
        };
        let outcome = self.ports.transactions.capture_hold(&cmd).await?;
        self.announce(&outcome);
        Ok(outcome)
    }

    /// Voids a hold (held, or still waiting for approval): everything it reserved is
    /// released. The agent holding the wallet or its owner may void it; voiding a hold that
    /// already ended voided or expired answers it as it is.
    ///
    /// # Errors
    /// `HoldNotFound` when the principal may not see it, `HoldNotOpen` when it was captured,
    /// denied, rejected or failed.
    #[tracing::instrument(skip_all, fields(hold_id = %id))]
    pub async fn void_hold(
        &self,
        principal: &Principal,
        id: TransactionId,
        audit: &AuditContext,
    ) -> Result<PostingOutcome, PostingError> {
        let cmd = VoidCommand {
            hold_id: id,
            principal: *principal,
            now: self.ports.clock.now(),
            audit: audit.clone(),
        };
        let mut outcome = self.ports.transactions.void_hold(&cmd).await?;
        self.announce(&outcome);
        outcome.transaction.status = outcome.transaction.status_at(cmd.now);
        Ok(outcome)
    }

    /// A hold of a wallet the principal may see, as it stands now (a hold past its expiry
    /// reads `expired` before the sweeper released it).
    ///
    /// # Errors
    /// `NotFound` otherwise.
    pub async fn get_hold(
        &self,
        principal: &Principal,
        id: TransactionId,
    ) -> Result<Transaction, AccessError> {
        let tx = self.get_transaction(principal, id).await?;
        if tx.kind == TransactionKind::Hold {
            Ok(tx)
        } else {
            Err(AccessError::NotFound)
        }
    }

    /// A page of a wallet's holds, newest first, optionally only those in one status (as
    /// they stand now).
    ///
    /// # Errors
    /// `NotFound` when the wallet is not visible to the principal.
    pub async fn list_holds(
        &self,
        principal: &Principal,
        wallet_id: WalletId,
        status: Option<TransactionStatus>,
        limit: Option<u32>,
        after: Option<TxCursor>,
    ) -> Result<TransactionPage, AccessError> {
        let filter = TxFilter {
            kind: Some(TransactionKind::Hold),
            status,
            ..TxFilter::default()
        };
        self.list_transactions(principal, wallet_id, &filter, limit, after)
            .await
    }

    /// Releases up to `limit` holds past their expiry, and expires up to `limit`
    /// transactions that waited for approval past their deadline: each in its own PostgreSQL
    /// transaction under its wallet's lock, so every instance may run this at once and none
    /// ends one twice. Publishes everything it ended, also when a failure kept it from
    /// ending the rest (their events were committed with them); returns how many it ended
    /// and that failure.
    pub async fn expire_due(&self, limit: u32) -> (usize, Option<crate::errors::RepoError>) {
        let now = self.ports.clock.now();
        let holds = self.ports.transactions.expire_holds(now, limit).await;
        let approvals = self.ports.transactions.expire_approvals(now, limit).await;
        let ended = holds.outcomes.len() + approvals.outcomes.len();
        if ended > 0 {
            self.ports.feed.committed();
        }
        (ended, holds.failed.or(approvals.failed))
    }

    /// A page request of at most `limit` items after the cursor.
    pub(super) fn page(limit: Option<u32>, after: Option<TxCursor>) -> PageRequest<TxCursor> {
        PageRequest {
            limit: super::page_limit(limit),
            after,
        }
    }
}
