//! The posting engine: deposits, transfers, payments, sweeps and approvals, each one
//! PostgreSQL transaction. The wallets are locked in ascending id order (the same statement
//! finds the transaction a repeated idempotency key produced, which is then answered before
//! anything else), the policy and today's spend are read under that lock, the domain's
//! policy engine decides, and everything the decision implies is written before the commit.
//! The decision stays in the domain; the atomicity is here.

pub(crate) mod batch;
mod decide;
mod deposit;
mod hold;
mod shared;
mod spend;
pub mod sql;
mod sweep;

use async_trait::async_trait;
use waiaas_domain::ports::{
    CaptureCommand, DecideCommand, DepositCommand, Ended, HoldCommand, PostingOutcome,
    SpendCommand, SweepCommand, TransactionRepository, VoidCommand,
};
use waiaas_domain::{
    ApprovalError, OwnerId, PageRequest, PostingError, RepoError, Transaction, TransactionId,
    TransactionPage, TxCursor, TxFilter, WalletId,
};

use crate::repo::transactions::Scope;
use crate::{Postgres, Work};

#[async_trait]
impl TransactionRepository for Postgres {
    #[tracing::instrument(skip_all, fields(wallet_id = %cmd.wallet_id, transaction_id = %cmd.transaction_id))]
    async fn post_deposit(&self, cmd: &DepositCommand) -> Result<PostingOutcome, PostingError> {
        self.deposit(cmd).await
    }

    #[tracing::instrument(skip_all, fields(wallet_id = %cmd.from_wallet_id, transaction_id = %cmd.transaction_id))]
    async fn post_spend(&self, cmd: &SpendCommand) -> Result<PostingOutcome, PostingError> {
        self.spend(cmd).await
    }

    #[tracing::instrument(skip_all, fields(wallet_id = %cmd.from_wallet_id, transaction_id = %cmd.transaction_id))]
    async fn post_sweep(&self, cmd: &SweepCommand) -> Result<PostingOutcome, PostingError> {
        self.run(Work::Write, || sweep::post(&self.db, cmd)).await
    }

    #[tracing::instrument(skip_all, fields(transaction_id = %cmd.transaction_id, approve = cmd.approve))]
    async fn decide(&self, cmd: &DecideCommand) -> Result<PostingOutcome, ApprovalError> {
        self.run(Work::Write, || decide::decide(&self.db, cmd))
            .await
    }

    #[tracing::instrument(skip_all, fields(wallet_id = %cmd.spend.from_wallet_id, transaction_id = %cmd.spend.transaction_id))]
    async fn post_hold(&self, cmd: &HoldCommand) -> Result<PostingOutcome, PostingError> {
        self.hold(cmd).await
    }

    #[tracing::instrument(skip_all, fields(hold_id = %cmd.hold_id, transaction_id = %cmd.transaction_id))]
    async fn capture_hold(&self, cmd: &CaptureCommand) -> Result<PostingOutcome, PostingError> {
        self.run(Work::Write, || hold::capture(&self.db, cmd)).await
    }

    #[tracing::instrument(skip_all, fields(hold_id = %cmd.hold_id))]
    async fn void_hold(&self, cmd: &VoidCommand) -> Result<PostingOutcome, PostingError> {
        self.run(Work::Write, || hold::void(&self.db, cmd)).await
    }

    async fn expire_holds(&self, now: chrono::DateTime<chrono::Utc>, limit: u32) -> Ended {
        hold::expire(self, now, limit).await
    }

    async fn expire_approvals(&self, now: chrono::DateTime<chrono::Utc>, limit: u32) -> Ended {
        hold::expire_approvals(self, now, limit).await
    }

    async fn get(&self, id: TransactionId) -> Result<Option<Transaction>, RepoError> {
        self.run(Work::Read, || crate::repo::transactions::get(&self.db, id))
            .await
    }

    async fn list_for_wallet(
        &self,
        wallet_id: WalletId,
        filter: &TxFilter,
        page: &PageRequest<TxCursor>,
    ) -> Result<TransactionPage, RepoError> {
        self.list_transactions(Scope::Wallet(wallet_id), filter, page)
            .await
    }

    async fn list_for_owner(
        &self,
        owner_id: OwnerId,
        filter: &TxFilter,
        page: &PageRequest<TxCursor>,
    ) -> Result<TransactionPage, RepoError> {
        self.list_transactions(Scope::Owner(owner_id), filter, page)
            .await
    }
}

impl Postgres {
    /// One page of a scope's transactions, as a read.
    async fn list_transactions(
        &self,
        scope: Scope,
        filter: &TxFilter,
        page: &PageRequest<TxCursor>,
    ) -> Result<TransactionPage, RepoError> {
        self.read_replica_safe(|db| crate::repo::transactions::list(db, scope, filter, page))
            .await
    }
}
