//! Repository ports: PostgreSQL is behind every one of them, and every mutation writes its
//! audit row in the same database transaction.

use async_trait::async_trait;
use chrono::NaiveDate;

use super::commands::{
    CaptureCommand, DecideCommand, DepositCommand, Ended, HoldCommand, PostingOutcome,
    SpendCommand, SweepCommand, VoidCommand,
};
use crate::errors::{AgentError, ApprovalError, CreateWalletError, PostingError, RepoError};
use crate::ids::{AgentId, MandateId, NotificationId, OwnerId, TransactionId, WalletId};
use crate::model::{
    Agent, AgentStatus, ApiKey, AuditContext, AuditEntry, AuditQuery, LedgerHead, Mandate,
    NewApiKey, NewSession, Owner, PageRequest, Principal, Session, SpendSummary, TokenHash,
    Transaction, TransactionPage, TxCursor, TxFilter, Wallet, WalletBalance, WalletOwnership,
};
use crate::notifications::{Notification, NotificationPage};
use crate::policy::{BudgetOwner, Budgets, Policy, PolicyRules};
use crate::values::{Asset, AssetCode};

/// Owners.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OwnerRepository: Send + Sync {
    /// Stores a new owner with its first API key.
    ///
    /// # Errors
    /// `RepoError` when storage fails; nothing is written then.
    async fn create(
        &self,
        owner: &Owner,
        key: &NewApiKey,
        audit: &AuditContext,
    ) -> Result<(), RepoError>;

    /// Reads an owner.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn get(&self, id: OwnerId) -> Result<Option<Owner>, RepoError>;
}

/// Agents and their API keys.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AgentRepository: Send + Sync {
    /// Stores a new agent.
    ///
    /// # Errors
    /// `AgentError::Unknown` when storage fails.
    async fn create(&self, agent: &Agent, audit: &AuditContext) -> Result<(), AgentError>;

    /// Reads an agent, revoked ones included.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn get(&self, id: AgentId) -> Result<Option<Agent>, RepoError>;

    /// An owner's agents that are not revoked, oldest first.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn list(&self, owner_id: OwnerId) -> Result<Vec<Agent>, RepoError>;

    /// Suspends or reactivates an agent of this owner.
    ///
    /// # Errors
    /// `AgentError::NotFound` when the agent is not this owner's or is revoked.
    async fn set_status(
        &self,
        id: AgentId,
        owner_id: OwnerId,
        status: AgentStatus,
        audit: &AuditContext,
    ) -> Result<Agent, AgentError>;

    /// Deletes an agent: marks it revoked and revokes all its keys and sessions in the same
    /// transaction. Returns the sessions and keys it revoked (with their new versions) so
    /// caches can write them through.
    ///
    /// # Errors
    /// `AgentError::NotFound` when the agent is not this owner's or already revoked.
    async fn revoke(
        &self,
        id: AgentId,
        owner_id: OwnerId,
        audit: &AuditContext,
    ) -> Result<crate::Revoked, AgentError>;

    /// Stores a new API key for an agent of this owner, or for the owner itself (the key's
    /// principal says whose).
    ///
    /// # Errors
    /// `AgentError::NotFound` when the agent is not this owner's or is revoked.
    async fn add_key(&self, key: &NewApiKey, audit: &AuditContext) -> Result<(), AgentError>;

    /// The API keys of a principal (an agent of its owner, or the owner's own), revoked ones
    /// included, oldest first.
    ///
    /// # Errors
    /// `AgentError::NotFound` when the agent is not this owner's or was deleted.
    async fn keys(&self, of: Principal) -> Result<Vec<ApiKey>, AgentError>;

    /// Revokes one API key of a principal, and the sessions opened with it, in one
    /// transaction. A key revoked before is returned as it stands, so a repeated revocation
    /// can write it through again. An owner keeps at least one live key.
    ///
    /// # Errors
    /// `AgentError::NotFound` when the agent is not this owner's or was deleted;
    /// `AgentError::KeyNotFound` when the key is not the principal's; `AgentError::LastKey`
    /// for an owner's last live key.
    async fn revoke_key(
        &self,
        of: Principal,
        key: crate::ApiKeyId,
        audit: &AuditContext,
    ) -> Result<crate::Revoked, AgentError>;
}

/// API keys and sessions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Finds a live API key by the hash of its secret; keys of revoked agents are not found.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn find_api_key(&self, hash: &TokenHash) -> Result<Option<ApiKey>, RepoError>;

    /// Stores a new session, in one transaction with a share lock on the API key it is
    /// opened with (`session.key_hash`) and on that key's agent: `None`, and nothing stored,
    /// when the key was revoked or its agent deleted meanwhile. So a session is never born
    /// after its credential died, and a deletion that commits later revokes it too.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn create_session(
        &self,
        session: &NewSession,
        audit: &AuditContext,
    ) -> Result<Option<Session>, RepoError>;

    /// Finds a session by the hash of its token, revoked and expired ones included.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn find_session(&self, hash: &TokenHash) -> Result<Option<Session>, RepoError>;

    /// Revokes a session; returns it with its new version (as it stands, when it was revoked
    /// before, so a repeated revocation can write it through again), or `None` if there is
    /// none.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn revoke_session(
        &self,
        hash: &TokenHash,
        audit: &AuditContext,
    ) -> Result<Option<Session>, RepoError>;
}

/// Wallets, their balances, spend and assets.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WalletRepository: Send + Sync {
    /// Stores a new wallet with a zero balance.
    ///
    /// # Errors
    /// `UnknownAsset` for an asset the platform does not list, `AgentNotFound` or
    /// `AgentRevoked` for the holder.
    async fn create(&self, wallet: &Wallet, audit: &AuditContext) -> Result<(), CreateWalletError>;

    /// Reads a wallet.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn get(&self, id: WalletId) -> Result<Option<Wallet>, RepoError>;

    /// Who holds a wallet and its asset: immutable, so it may be cached in process.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn ownership(&self, id: WalletId) -> Result<Option<WalletOwnership>, RepoError>;

    /// A wallet's balance with its row version.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn balance(&self, id: WalletId) -> Result<Option<WalletBalance>, RepoError>;

    /// Today's and this month's outgoing spend (UTC), versioned by the wallet row.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn summary(
        &self,
        id: WalletId,
        today: NaiveDate,
    ) -> Result<Option<SpendSummary>, RepoError>;

    /// An owner's wallets, optionally only one agent's, oldest first.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn list(
        &self,
        owner_id: OwnerId,
        agent_id: Option<AgentId>,
    ) -> Result<Vec<Wallet>, RepoError>;

    /// An asset the platform supports.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn asset(&self, code: &AssetCode) -> Result<Option<Asset>, RepoError>;

    /// A text that differs whenever anything an owner's home shows on `today` differs: its
    /// agents, wallets (balances, spend), policies, budgets and the set of transactions
    /// waiting for approval. Every such change bumps a version or a time stamp it covers.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn home_fingerprint(
        &self,
        owner_id: OwnerId,
        today: NaiveDate,
    ) -> Result<String, RepoError>;

    /// What an owner's home shows on `today`, its fingerprint read first (so the data is at
    /// least as new as the fingerprint it carries).
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn home(
        &self,
        owner_id: OwnerId,
        today: NaiveDate,
    ) -> Result<crate::model::HomeData, RepoError>;
}

/// Wallet policies.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PolicyRepository: Send + Sync {
    /// A wallet's policy, or the unrestricted policy at version 0 when none was set.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn get(&self, wallet_id: WalletId) -> Result<Policy, RepoError>;

    /// Replaces a wallet's rules, bumping the version, and audits old and new rules.
    ///
    /// # Errors
    /// `RepoError` when storage fails; nothing is written then.
    async fn put(
        &self,
        wallet_id: WalletId,
        rules: &PolicyRules,
        audit: &AuditContext,
    ) -> Result<Policy, RepoError>;

    /// The budget of a level above the wallets (an agent's or an owner's), per asset; empty
    /// when none is set. Read from PostgreSQL, never from a cache.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn budget(&self, of: BudgetOwner) -> Result<Budgets, RepoError>;

    /// Stores a new mandate and audits it.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn create_mandate(
        &self,
        mandate: &Mandate,
        audit: &AuditContext,
    ) -> Result<(), RepoError>;

    /// A mandate, from PostgreSQL.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn mandate(&self, id: MandateId) -> Result<Option<Mandate>, RepoError>;

    /// A wallet's mandates, newest first, at most `limit`.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn mandates(&self, wallet_id: WalletId, limit: u32) -> Result<Vec<Mandate>, RepoError>;

    /// Revokes a mandate of the owner (under its row lock, so no spend uses it after the
    /// commit) and audits it; a revoked one is returned as it is. `None` when it is not the
    /// owner's.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn revoke_mandate(
        &self,
        id: MandateId,
        owner_id: OwnerId,
        audit: &AuditContext,
    ) -> Result<Option<Mandate>, RepoError>;

    /// What every wallet below a level spent in one asset today and this month (the days of
    /// this month up to `today`). Read from PostgreSQL.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn level_spend(
        &self,
        of: BudgetOwner,
        asset: &AssetCode,
        today: NaiveDate,
    ) -> Result<crate::policy::LevelUsage, RepoError>;

    /// Replaces a level's budget (assets left out lose theirs), and audits old and new. It
    /// first locks every wallet below the level (in id order, as postings do), so a spend
    /// that started before the change is committed, and counted, before it takes effect.
    ///
    /// # Errors
    /// `RepoError` when storage fails (an unknown asset is refused by the service before).
    async fn put_budget(
        &self,
        of: BudgetOwner,
        owner_id: OwnerId,
        budgets: &Budgets,
        audit: &AuditContext,
    ) -> Result<Budgets, RepoError>;
}

/// Posting and reading transactions. Each posting is one PostgreSQL transaction: the
/// wallets are locked in ascending id order, the policy and today's spend are read under
/// the lock, the domain's policy engine decides, and the transaction, ledger entries,
/// balances, versions, spend, notification and audit row are written before the commit.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TransactionRepository: Send + Sync {
    /// Credits a wallet.
    ///
    /// # Errors
    /// `WalletNotFound` when the wallet is not the owner's, `WalletClosed`,
    /// `BalanceOverflow`, `IdempotencyConflict` when the key was used for another request.
    /// A key used before replays its transaction before anything else is checked.
    async fn post_deposit(&self, cmd: &DepositCommand) -> Result<PostingOutcome, PostingError>;

    /// Decides on and, if allowed, posts a transfer or payment. A denial, a hold for
    /// approval or insufficient funds is an `Ok` outcome with that status: it is recorded.
    /// A key used before replays its transaction before anything else is checked.
    ///
    /// # Errors
    /// `WalletNotFound`, `NotHolder`, `AssetMismatch`, `AgentNotActive`, `WalletClosed`,
    /// `BalanceOverflow`, `IdempotencyConflict`; nothing is written then.
    async fn post_spend(&self, cmd: &SpendCommand) -> Result<PostingOutcome, PostingError>;

    /// Moves the whole balance of a wallet to another wallet of the same owner and asset.
    /// A key used before replays its transaction before anything else is checked.
    ///
    /// # Errors
    /// `WalletNotFound` when a wallet is not the owner's, `AssetMismatch`, `WalletClosed`
    /// for a closed target, `NothingToSweep`, `BalanceOverflow`, `IdempotencyConflict`;
    /// nothing is written then.
    async fn post_sweep(&self, cmd: &SweepCommand) -> Result<PostingOutcome, PostingError>;

    /// Approves (and posts, if funds and policy still allow) or rejects a pending
    /// transaction. Repeating the decision already taken replays it.
    ///
    /// # Errors
    /// `NotFound` when it is not the owner's, `NotPending` when it was never pending or was
    /// decided the other way.
    async fn decide(&self, cmd: &DecideCommand) -> Result<PostingOutcome, ApprovalError>;

    /// Decides on and, if allowed, places a hold: like [`Self::post_spend`], but the amount
    /// is reserved (the wallet's `held`, the day's spend) instead of moved. A pending hold
    /// is placed by the owner's approval.
    ///
    /// # Errors
    /// As [`Self::post_spend`].
    async fn post_hold(&self, cmd: &HoldCommand) -> Result<PostingOutcome, PostingError>;

    /// Captures a held hold: posts a completed transaction of at most its amount to its
    /// counterparty and releases the rest. The capture's key replays it.
    ///
    /// # Errors
    /// `HoldNotFound` when it is not a hold of a wallet the agent holds, `HoldNotOpen`,
    /// `HoldExpired`, `CaptureExceedsHold`, `AgentNotActive`, `WalletClosed`,
    /// `BalanceOverflow`, `IdempotencyConflict`; nothing is written then.
    async fn capture_hold(&self, cmd: &CaptureCommand) -> Result<PostingOutcome, PostingError>;

    /// Voids a held or pending hold, releasing everything it reserved; voiding a hold that
    /// is already voided or expired answers it as it is (a replay).
    ///
    /// # Errors
    /// `HoldNotFound` when the principal may not see it, `HoldNotOpen` when it was
    /// captured, denied, rejected or failed.
    async fn void_hold(&self, cmd: &VoidCommand) -> Result<PostingOutcome, PostingError>;

    /// Releases up to `limit` holds whose expiry is at or before `now`, each in its own
    /// PostgreSQL transaction under its wallet's lock, so instances running this at once
    /// never release one twice. Returns what each committed release wrote, also when a
    /// later one failed (a wallet locked past the lock timeout is skipped and reported; any
    /// other failure ends the run).
    async fn expire_holds(&self, now: chrono::DateTime<chrono::Utc>, limit: u32) -> Ended;

    /// Expires up to `limit` transactions that waited for approval past their deadline
    /// (their wallet's `approval_timeout_s`), each in its own PostgreSQL transaction under
    /// its wallet's lock: `expired`, the owner notified, nothing moved. Returns what each
    /// committed expiry wrote, also when a later one failed, as [`Self::expire_holds`] does.
    async fn expire_approvals(&self, now: chrono::DateTime<chrono::Utc>, limit: u32) -> Ended;

    /// Reads a transaction.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn get(&self, id: TransactionId) -> Result<Option<Transaction>, RepoError>;

    /// A wallet's transactions (paying or receiving) that match the filter, newest first.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn list_for_wallet(
        &self,
        wallet_id: WalletId,
        filter: &TxFilter,
        page: &PageRequest<TxCursor>,
    ) -> Result<TransactionPage, RepoError>;

    /// The transactions of every wallet of an owner that match the filter, newest first.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn list_for_owner(
        &self,
        owner_id: OwnerId,
        filter: &TxFilter,
        page: &PageRequest<TxCursor>,
    ) -> Result<TransactionPage, RepoError>;
}

/// The audit trail.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// One owner's audit rows, newest first.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn list(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, RepoError>;

    /// The tamper-evident ledger's latest sealed position and hash.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn ledger_head(&self) -> Result<LedgerHead, RepoError>;
}

/// Owners' notifications, stored in PostgreSQL.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NotificationRepository: Send + Sync {
    /// An owner's notifications, newest first, with the unread count.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn list(
        &self,
        owner_id: OwnerId,
        page: &PageRequest<NotificationId>,
    ) -> Result<NotificationPage, RepoError>;

    /// How many notifications the owner has not read, with the version of that count.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn unread(
        &self,
        owner_id: OwnerId,
    ) -> Result<crate::notifications::UnreadCount, RepoError>;

    /// Marks one notification read; `None` when it is not this owner's.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn mark_read(
        &self,
        owner_id: OwnerId,
        id: NotificationId,
        audit: &AuditContext,
    ) -> Result<Option<(Notification, crate::notifications::UnreadCount)>, RepoError>;
}

/// What changes in a webhook endpoint (`None` leaves a field as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    /// A new URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// A new description (`Some(None)` removes it).
    pub description: Option<Option<String>>,
    /// Enabled or not.
    pub enabled: Option<bool>,
}

/// Owners' webhook endpoints and their deliveries, stored in PostgreSQL.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    /// Stores a new endpoint with its signing secret, with its audit row; `false` (nothing
    /// stored) when the owner already has `max` endpoints.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn create_webhook(
        &self,
        webhook: &crate::webhooks::Webhook,
        secret: &str,
        max: u32,
        audit: &AuditContext,
    ) -> Result<bool, RepoError>;

    /// The owner's endpoints, newest first.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn list_webhooks(
        &self,
        owner_id: OwnerId,
    ) -> Result<Vec<crate::webhooks::Webhook>, RepoError>;

    /// One of the owner's endpoints.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn get_webhook(
        &self,
        owner_id: OwnerId,
        id: crate::ids::WebhookId,
    ) -> Result<Option<crate::webhooks::Webhook>, RepoError>;

    /// Changes one of the owner's endpoints (a new `secret` when given), with its audit row;
    /// `None` when it is not the owner's.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn update_webhook(
        &self,
        owner_id: OwnerId,
        id: crate::ids::WebhookId,
        patch: &WebhookPatch,
        secret: Option<String>,
        audit: &AuditContext,
    ) -> Result<Option<crate::webhooks::Webhook>, RepoError>;

    /// Deletes one of the owner's endpoints and its deliveries, with its audit row; `false`
    /// when it is not the owner's.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn delete_webhook(
        &self,
        owner_id: OwnerId,
        id: crate::ids::WebhookId,
        audit: &AuditContext,
    ) -> Result<bool, RepoError>;

    /// An endpoint's deliveries, newest event first, before the event `before` if given.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn deliveries(
        &self,
        owner_id: OwnerId,
        id: crate::ids::WebhookId,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<crate::webhooks::Delivery>, RepoError>;

    /// Makes a delivery due now again (a failed one pending again, with its attempts counted
    /// afresh); `None` when it is not the owner's endpoint's, or already delivered.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn retry_delivery(
        &self,
        owner_id: OwnerId,
        id: crate::ids::WebhookId,
        delivery: crate::ids::DeliveryId,
        audit: &AuditContext,
    ) -> Result<Option<crate::webhooks::Delivery>, RepoError>;
}

/// A delivery a worker claimed: everything it needs to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The delivery.
    pub delivery: crate::webhooks::Delivery,
    /// Where to send it.
    pub url: String,
    /// The endpoint's signing secret.
    pub secret: String,
    /// Whose endpoint it is.
    pub owner_id: OwnerId,
    /// The event (`None` when retention deleted it meanwhile).
    pub event: Option<crate::Event>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The answer's status code, if one came.
    pub status_code: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Delivered (a 2xx).
    pub delivered: bool,
    /// When to try again (pending), or `None` to give up (failed, and the owner notified).
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The queue the delivery workers of every instance share.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Claims up to `limit` due deliveries for `lease` (no other worker takes them
    /// meanwhile; one whose worker died is due again when the lease ends). Only the oldest
    /// pending delivery of an endpoint and a wallet is ever due, so they go out in order.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn claim(
        &self,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<DueDelivery>, RepoError>;

    /// Records an attempt of a claimed delivery; when it gives up, notifies the owner and
    /// returns the owner with the new version of its notifications.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn finish(
        &self,
        delivery: &DueDelivery,
        attempt: &Attempt,
    ) -> Result<Option<(OwnerId, i64)>, RepoError>;
}
