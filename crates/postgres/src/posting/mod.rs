//! The posting engine: deposits, transfers, payments and approvals, each one PostgreSQL
//! transaction. The wallets are locked in ascending id order, the policy and today's spend
//! are read under that lock, the domain's policy engine decides, and everything the decision
//! implies is written before the commit. The decision stays in the domain; the atomicity is
//! here.

mod decide;
mod deposit;
mod shared;
mod spend;
pub mod sql;

use async_trait::async_trait;
use waiaas_domain::ports::{
    DecideCommand, DepositCommand, PostingOutcome, SpendCommand, TransactionRepository,
};
use waiaas_domain::{
    ApprovalError, PageRequest, PostingError, RepoError, Transaction, TransactionId,
    TransactionPage, TxCursor, WalletId,
};

use crate::Postgres;

#[async_trait]
impl TransactionRepository for Postgres {
    #[tracing::instrument(skip_all, fields(wallet_id = %cmd.wallet_id, transaction_id = %cmd.transaction_id))]
    async fn post_deposit(&self, cmd: &DepositCommand) -> Result<PostingOutcome, PostingError> {
        deposit::post(&self.db, cmd).await
    }

    #[tracing::instrument(skip_all, fields(wallet_id = %cmd.from_wallet_id, transaction_id = %cmd.transaction_id))]
    async fn post_spend(&self, cmd: &SpendCommand) -> Result<PostingOutcome, PostingError> {
        spend::post(&self.db, cmd).await
    }

    #[tracing::instrument(skip_all, fields(transaction_id = %cmd.transaction_id, approve = cmd.approve))]
    async fn decide(&self, cmd: &DecideCommand) -> Result<PostingOutcome, ApprovalError> {
        decide::decide(&self.db, cmd).await
    }

    async fn get(&self, id: TransactionId) -> Result<Option<Transaction>, RepoError> {
        crate::repo::transactions::get(&self.db, id).await
    }

    async fn list_for_wallet(
        &self,
        wallet_id: WalletId,
        page: &PageRequest<TxCursor>,
    ) -> Result<TransactionPage, RepoError> {
        crate::repo::transactions::list_for_wallet(&self.db, wallet_id, page).await
    }
}
