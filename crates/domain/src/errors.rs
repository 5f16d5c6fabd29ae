//! Error types shared by ports and services. Each operation has its own enum so a caller
//! matches on exactly what can happen; anything unexpected is `Unknown` with its cause.

use crate::ids::{AgentId, TransactionId, WalletId};
use crate::model::TransactionStatus;
use crate::money::MoneyError;
use crate::policy::PolicyError;
use crate::values::{AssetCode, ValueError};

/// A storage failure with no meaning to the domain (connection lost, timeout, bug).
/// [`Fault::of`] tells an infrastructure fault (retry later) from a bug.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RepoError(#[from] pub anyhow::Error);

/// A failure of the infrastructure, neither the caller's mistake nor a bug: the request may
/// be retried (money-moving ones with the same idempotency key). Adapters attach it to the
/// cause they wrap (as `anyhow` context), so it travels inside every `Unknown` variant and
/// [`RepoError`]; [`Fault::of`] finds it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Fault {
    /// The database cannot be reached, refused the connection, or no connection was free.
    #[error("the database is unavailable")]
    DatabaseUnavailable,
    /// The database did not answer in time (a statement timeout).
    #[error("the database did not answer in time")]
    Timeout,
    /// A wallet (or another row the request needs) stayed locked by other work for longer
    /// than the lock timeout.
    #[error("a wallet is locked by another operation")]
    WalletBusy,
    /// The connection was lost while committing: the change may or may not have been made.
    /// Retrying with the same idempotency key replays the real outcome.
    #[error("the connection was lost while committing: the outcome is unknown")]
    OutcomeUnknown,
}

impl Fault {
    /// The fault attached anywhere in an error's chain of causes, if any.
    #[must_use]
    pub fn of(error: &anyhow::Error) -> Option<Self> {
        // `downcast_ref` sees through every layer of context, including a `Fault` attached
        // as context; the chain walk finds one that is a cause of its own.
        error
            .downcast_ref::<Self>()
            .or_else(|| error.chain().find_map(|e| e.downcast_ref::<Self>()))
            .copied()
    }

    /// The stable code of the fault, as the HTTP API reports it.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::DatabaseUnavailable => "database_unavailable",
            Self::Timeout => "timeout",
            Self::WalletBusy => "wallet_busy",
            Self::OutcomeUnknown => "outcome_unknown",
        }
    }
}

/// Creating a wallet failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateWalletError {
    /// The asset code is well formed but the platform does not support it.
    #[error("unknown asset `{0}`")]
    UnknownAsset(AssetCode),
    /// The asset code or name is malformed.
    #[error(transparent)]
    Invalid(#[from] ValueError),
    /// The agent does not exist or belongs to another owner.
    #[error("agent {0} not found")]
    AgentNotFound(AgentId),
    /// The agent was deleted.
    #[error("agent {0} is revoked")]
    AgentRevoked(AgentId),
    /// Storage failed.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Changing an agent failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The name is malformed.
    #[error(transparent)]
    Invalid(#[from] ValueError),
    /// The agent does not exist, was deleted, or belongs to another owner.
    #[error("agent {0} not found")]
    NotFound(AgentId),
    /// The API key does not exist or is not the agent's (or the owner's).
    #[error("API key {0} not found")]
    KeyNotFound(crate::ids::ApiKeyId),
    /// Revoking it would leave the owner without a working key.
    #[error("an owner keeps at least one working API key: issue another one first")]
    LastKey,
    /// Storage failed.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Reading or changing something the caller may not see.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// It does not exist, or the caller may not know it exists.
    #[error("not found")]
    NotFound,
    /// The caller knows it exists but may not do this (an agent changing a policy).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A filter or other input of the read is malformed.
    #[error("{0}")]
    Invalid(&'static str),
    /// A transaction filter is out of bounds.
    #[error(transparent)]
    Filter(#[from] crate::model::InvalidFilter),
    /// A well-formed asset code the platform does not support.
    #[error("unknown asset `{0}`")]
    UnknownAsset(AssetCode),
    /// Storage failed.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

impl From<RepoError> for AccessError {
    fn from(e: RepoError) -> Self {
        Self::Unknown(e.0)
    }
}

impl From<RepoError> for AgentError {
    fn from(e: RepoError) -> Self {
        Self::Unknown(e.0)
    }
}

impl From<RepoError> for CreateWalletError {
    fn from(e: RepoError) -> Self {
        Self::Unknown(e.0)
    }
}

/// Setting a policy failed.
#[derive(Debug, thiserror::Error)]
pub enum SetPolicyError {
    /// The rules are not acceptable.
    #[error(transparent)]
    Invalid(#[from] PolicyError),
    /// The wallet does not exist or the caller may not see it.
    #[error("wallet not found")]
    NotFound,
    /// An agent tried to change its own policy.
    #[error("only the owner may set a wallet's policy")]
    Forbidden,
    /// Storage failed.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

impl From<RepoError> for SetPolicyError {
    fn from(e: RepoError) -> Self {
        Self::Unknown(e.0)
    }
}

/// Posting a deposit, transfer or payment failed before any money moved, and nothing was
/// written.
#[derive(Debug, thiserror::Error)]
pub enum PostingError {
    /// The amount is zero, negative or too large.
    #[error("invalid amount: {0}")]
    InvalidAmount(#[from] MoneyError),
    /// A memo, destination or idempotency key is malformed.
    #[error(transparent)]
    Invalid(#[from] ValueError),
    /// The metadata is not a JSON object of at most 4 KiB.
    #[error("metadata must be a JSON object of at most 4096 bytes")]
    InvalidMetadata,
    /// Neither or both of a target wallet and a destination were given.
    #[error("give exactly one of `to_wallet_id` and `destination`")]
    AmbiguousTarget,
    /// The paying or receiving wallet does not exist, or the caller may not see it.
    #[error("wallet {0} not found")]
    WalletNotFound(WalletId),
    /// The paying wallet is held by another agent.
    #[error("wallet {0} is not held by this agent")]
    NotHolder(WalletId),
    /// A wallet cannot pay itself.
    #[error("a wallet cannot transfer to itself")]
    SameWallet,
    /// The two wallets hold different assets.
    #[error("cannot move {from} into a {to} wallet")]
    AssetMismatch {
        /// The paying wallet's asset.
        from: AssetCode,
        /// The receiving wallet's asset.
        to: AssetCode,
    },
    /// The agent is suspended or revoked.
    #[error("the agent is not active and cannot move money")]
    AgentNotActive,
    /// The receiving wallet is closed (its agent was deleted): it takes no more money in.
    /// Its owner moves what it holds out with a sweep.
    #[error("wallet {0} is closed: its agent was deleted, and it accepts no more money")]
    WalletClosed(WalletId),
    /// A sweep of a wallet that holds nothing.
    #[error("wallet {0} holds nothing to sweep")]
    NothingToSweep(WalletId),
    /// A money-moving request came without an idempotency key.
    #[error("an idempotency key is required, so that a retry cannot move money twice")]
    MissingIdempotencyKey,
    /// Only an agent moves money out of its wallets; only an owner deposits.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The credit would overflow the receiving balance.
    #[error("the receiving balance would overflow")]
    BalanceOverflow,
    /// The idempotency key was already used for a different request.
    #[error("the idempotency key was already used with a different request")]
    IdempotencyConflict,
    /// The hold does not exist, or the caller may not see it.
    #[error("hold {0} not found")]
    HoldNotFound(TransactionId),
    /// The hold was already captured, voided, denied or rejected, or still waits for approval
    /// (it can then only be voided).
    #[error("hold is {} and cannot be {action}", .status.as_str())]
    HoldNotOpen {
        /// Where the hold stands.
        status: TransactionStatus,
        /// What was asked: `captured` or `voided`.
        action: &'static str,
    },
    /// The spend names a mandate that does not cover it.
    #[error(transparent)]
    Mandate(#[from] crate::model::MandateRefusal),
    /// A hold's lifetime is out of bounds.
    #[error("expires_in_s must be between 1 and 604800 (7 days)")]
    HoldLifetime,
    /// The hold expired before it was captured: its amount is released.
    #[error("the hold expired and its amount was released")]
    HoldExpired,
    /// A capture above the held amount.
    #[error("cannot capture {asked}: the hold is for {held}")]
    CaptureExceedsHold {
        /// The held amount.
        held: crate::money::Money,
        /// The amount asked for.
        asked: crate::money::Money,
    },
    /// Storage failed.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

impl From<RepoError> for PostingError {
    fn from(e: RepoError) -> Self {
        Self::Unknown(e.0)
    }
}

/// Approving or rejecting a pending transaction failed.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The transaction does not exist or belongs to another owner.
    #[error("transaction {0} not found")]
    NotFound(TransactionId),
    /// Only the owner decides.
    #[error("only the owner may approve or reject a transaction")]
    Forbidden,
    /// The transaction is not waiting for approval.
    #[error("transaction is {} and no longer pending approval", .0.as_str())]
    NotPending(TransactionStatus),
    /// It waited for approval longer than its wallet's `approval_timeout_s`: it expired.
    #[error("the transaction waited too long for approval and expired; nothing moved")]
    Expired,
    /// The credit would overflow the receiving balance.
    #[error("the receiving balance would overflow")]
    BalanceOverflow,
    /// Storage failed.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

impl From<RepoError> for ApprovalError {
    fn from(e: RepoError) -> Self {
        Self::Unknown(e.0)
    }
}

/// Authenticating a bearer credential failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No such key or session, or it was revoked, expired, or its agent deleted.
    #[error("invalid or expired credential")]
    Unauthenticated,
    /// Storage failed.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

impl From<RepoError> for AuthError {
    fn from(e: RepoError) -> Self {
        Self::Unknown(e.0)
    }
}
