//! Postings: after the commit, the new balances are written through and the wallets'
//! summaries (and a notified owner's unread count) tombstoned.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use waiaas_domain::ports::{
    DecideCommand, DepositCommand, PostingOutcome, SpendCommand, TransactionRepository,
};
use waiaas_domain::{
    ApprovalError, PageRequest, PostingError, RepoError, Transaction, TransactionId,
    TransactionPage, TxCursor, WalletId,
};

use crate::versioned::summary_version;
use crate::{Cache, Change, Kind};

/// Transactions, with write-through of what a posting changed.
#[derive(Clone)]
pub struct CachedTransactions {
    inner: Arc<dyn TransactionRepository>,
    cache: Arc<Cache>,
}

impl std::fmt::Debug for CachedTransactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachedTransactions")
    }
}

impl CachedTransactions {
    /// Decorates `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn TransactionRepository>, cache: Arc<Cache>) -> Self {
        Self { inner, cache }
    }

    async fn reflect(&self, outcome: &PostingOutcome, day: NaiveDate) {
        let mut changes = Vec::with_capacity(outcome.balances.len() * 2 + 1);
        for b in &outcome.balances {
            changes.push(Change::value(Kind::Balance, b.wallet_id, b));
            changes.push(Change::tombstone(
                Kind::Summary,
                b.wallet_id,
                summary_version(day, b.version),
            ));
        }
        if let Some((owner, version)) = outcome.notified {
            changes.push(Change::tombstone(Kind::Unread, owner, version));
        }
        self.cache.apply(changes).await;
    }
}

#[async_trait]
impl TransactionRepository for CachedTransactions {
    async fn post_deposit(&self, cmd: &DepositCommand) -> Result<PostingOutcome, PostingError> {
        let out = self.inner.post_deposit(cmd).await?;
        self.reflect(&out, cmd.now.date_naive()).await;
        Ok(out)
    }

    async fn post_spend(&self, cmd: &SpendCommand) -> Result<PostingOutcome, PostingError> {
        let out = self.inner.post_spend(cmd).await?;
        self.reflect(&out, cmd.now.date_naive()).await;
        Ok(out)
    }

    async fn decide(&self, cmd: &DecideCommand) -> Result<PostingOutcome, ApprovalError> {
        let out = self.inner.decide(cmd).await?;
        self.reflect(&out, cmd.now.date_naive()).await;
        Ok(out)
    }

    async fn get(&self, id: TransactionId) -> Result<Option<Transaction>, RepoError> {
        self.inner.get(id).await
    }

    async fn list_for_wallet(
        &self,
        wallet_id: WalletId,
        page: &PageRequest<TxCursor>,
    ) -> Result<TransactionPage, RepoError> {
        self.inner.list_for_wallet(wallet_id, page).await
    }
}
