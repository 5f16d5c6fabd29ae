//! Postings: after the commit, the new balances are written through and the wallets'
//! summaries (and a notified owner's unread count) tombstoned, on a task of its own so a
//! caller that goes away cannot stop it halfway. A replay writes the current balances
//! through again, repairing a cache its first attempt could not update.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use waiaas_domain::ports::{
    CaptureCommand, DecideCommand, DepositCommand, Ended, HoldCommand, PostingOutcome,
    SpendCommand, SweepCommand, TransactionRepository, VoidCommand,
};
use waiaas_domain::{
    ApprovalError, OwnerId, PageRequest, PostingError, RepoError, Transaction, TransactionId,
    TransactionPage, TxCursor, TxFilter, WalletId,
};

use super::{detached, unfenced};
use crate::versioned::summary_version;
use crate::{Cache, Change, Kind, Unfenced};

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
}

async fn reflect(cache: &Cache, outcome: &PostingOutcome, day: NaiveDate) -> Result<(), Unfenced> {
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
    cache.apply(changes).await
}

/// Reflects every committed outcome of a sweep, also when the sweep stopped early: what it
/// committed is in PostgreSQL either way. A reflection that could be neither written nor
/// fenced becomes the sweep's failure (the next run cannot repair it, so it is reported).
async fn reflect_ended(cache: &Cache, mut ended: Ended, day: NaiveDate) -> Ended {
    for out in &ended.outcomes {
        if let Err(e) = reflect(cache, out, day).await {
            ended.failed = Some(unfenced::<RepoError>(e));
            break;
        }
    }
    ended
}

/// Runs a sweep on a task of its own, like every write: what it commits is reflected even
/// when its caller goes away.
async fn sweep(work: impl std::future::Future<Output = Ended> + Send + 'static) -> Ended {
    match detached(async move { Ok::<_, RepoError>(work.await) }).await {
        Ok(ended) => ended,
        Err(e) => Ended {
            outcomes: Vec::new(),
            failed: Some(e),
        },
    }
}

/// Posts through the inner repository and reflects the outcome in the cache, detached from
/// the caller.
macro_rules! post {
    ($self:ident, $method:ident, $cmd:ident, $err:ty) => {{
        let (inner, cache, cmd) = ($self.inner.clone(), $self.cache.clone(), $cmd.clone());
        detached(async move {
            let out = inner.$method(&cmd).await?;
            reflect(&cache, &out, cmd.now.date_naive())
                .await
                .map_err(unfenced::<$err>)?;
            Ok(out)
        })
        .await
    }};
}

#[async_trait]
impl TransactionRepository for CachedTransactions {
    async fn post_deposit(&self, cmd: &DepositCommand) -> Result<PostingOutcome, PostingError> {
        post!(self, post_deposit, cmd, PostingError)
    }

    async fn post_spend(&self, cmd: &SpendCommand) -> Result<PostingOutcome, PostingError> {
        post!(self, post_spend, cmd, PostingError)
    }

    async fn post_sweep(&self, cmd: &SweepCommand) -> Result<PostingOutcome, PostingError> {
        post!(self, post_sweep, cmd, PostingError)
    }

    async fn decide(&self, cmd: &DecideCommand) -> Result<PostingOutcome, ApprovalError> {
        post!(self, decide, cmd, ApprovalError)
    }

    async fn post_hold(&self, cmd: &HoldCommand) -> Result<PostingOutcome, PostingError> {
        let (inner, cache, cmd) = (self.inner.clone(), self.cache.clone(), cmd.clone());
        detached(async move {
            let out = inner.post_hold(&cmd).await?;
            reflect(&cache, &out, cmd.spend.now.date_naive())
                .await
                .map_err(unfenced::<PostingError>)?;
            Ok(out)
        })
        .await
    }

    async fn capture_hold(&self, cmd: &CaptureCommand) -> Result<PostingOutcome, PostingError> {
        post!(self, capture_hold, cmd, PostingError)
    }

    async fn void_hold(&self, cmd: &VoidCommand) -> Result<PostingOutcome, PostingError> {
        post!(self, void_hold, cmd, PostingError)
    }

    async fn expire_holds(&self, now: chrono::DateTime<chrono::Utc>, limit: u32) -> Ended {
        let (inner, cache) = (self.inner.clone(), self.cache.clone());
        sweep(async move {
            let ended = inner.expire_holds(now, limit).await;
            reflect_ended(&cache, ended, now.date_naive()).await
        })
        .await
    }

    async fn expire_approvals(&self, now: chrono::DateTime<chrono::Utc>, limit: u32) -> Ended {
        let (inner, cache) = (self.inner.clone(), self.cache.clone());
        sweep(async move {
            let ended = inner.expire_approvals(now, limit).await;
            reflect_ended(&cache, ended, now.date_naive()).await
        })
        .await
    }

    async fn get(&self, id: TransactionId) -> Result<Option<Transaction>, RepoError> {
        self.inner.get(id).await
    }

    async fn list_for_wallet(
        &self,
        wallet_id: WalletId,
        filter: &TxFilter,
        page: &PageRequest<TxCursor>,
    ) -> Result<TransactionPage, RepoError> {
        self.inner.list_for_wallet(wallet_id, filter, page).await
    }

    async fn list_for_owner(
        &self,
        owner_id: OwnerId,
        filter: &TxFilter,
        page: &PageRequest<TxCursor>,
    ) -> Result<TransactionPage, RepoError> {
        self.inner.list_for_owner(owner_id, filter, page).await
    }
}
