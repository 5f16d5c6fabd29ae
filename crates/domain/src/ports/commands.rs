//! The validated commands the posting ports execute in one PostgreSQL transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ids::{AgentId, OwnerId, TransactionId, WalletId};
use crate::model::{AuditContext, Transaction, WalletBalance};
use crate::money::Money;
use crate::values::{Counterparty, IdempotencyKey, Memo};

/// A client's idempotency key with the fingerprint of the request it was first used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The key, unique per principal.
    pub key: IdempotencyKey,
    /// SHA-256 of the request's canonical form: a repeat with another body is a conflict.
    pub request_hash: String,
}

impl Idempotency {
    /// Binds a key to the canonical JSON form of a request.
    #[must_use]
    pub fn bind(key: IdempotencyKey, request: &impl Serialize) -> Self {
        // Serialising a plain struct of strings and numbers cannot fail.
        let canonical = serde_json::to_vec(request).unwrap_or_default();
        Self {
            key,
            request_hash: hex::encode(Sha256::digest(&canonical)),
        }
    }
}

/// Money in from outside, credited by the wallet's owner.
#[derive(Debug, Clone, PartialEq)]
pub struct DepositCommand {
    /// The id the transaction will have.
    pub transaction_id: TransactionId,
    /// The credited wallet.
    pub wallet_id: WalletId,
    /// The owner crediting it (must own the wallet).
    pub owner_id: OwnerId,
    /// The amount, above zero.
    pub amount: Money,
    /// A note.
    pub memo: Option<Memo>,
    /// Client metadata (a JSON object).
    pub metadata: serde_json::Value,
    /// The retry key, if the client sent one.
    pub idempotency: Option<Idempotency>,
    /// The time of the request.
    pub now: DateTime<Utc>,
    /// Who and where, for the audit row.
    pub audit: AuditContext,
}

/// An agent moving money out of a wallet it holds, to a wallet or an external destination.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendCommand {
    /// The id the transaction will have.
    pub transaction_id: TransactionId,
    /// The paying wallet.
    pub from_wallet_id: WalletId,
    /// Where the money goes.
    pub to: Counterparty,
    /// The amount, above zero.
    pub amount: Money,
    /// The agent asking (must hold the paying wallet and be active).
    pub agent_id: AgentId,
    /// The agent's owner.
    pub owner_id: OwnerId,
    /// A note.
    pub memo: Option<Memo>,
    /// Client metadata (a JSON object).
    pub metadata: serde_json::Value,
    /// The retry key, if the client sent one.
    pub idempotency: Option<Idempotency>,
    /// The mandate that pre-approves it, if named.
    pub mandate_id: Option<crate::ids::MandateId>,
    /// The time of the request: today's spend and the rolling hour are measured from it.
    pub now: DateTime<Utc>,
    /// Who and where, for the audit row.
    pub audit: AuditContext,
}

/// An agent reserving an amount of a wallet it holds: a spend decided by the same policy,
/// that moves no money until it is captured.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldCommand {
    /// The spend it reserves (its transaction id is the hold's id).
    pub spend: SpendCommand,
    /// When the hold expires if not captured.
    pub expires_at: DateTime<Utc>,
}

/// An agent capturing a hold: at most the held amount moves to the hold's counterparty, the
/// rest is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureCommand {
    /// The id the capture's transaction will have.
    pub transaction_id: TransactionId,
    /// The hold.
    pub hold_id: TransactionId,
    /// The amount to capture; the whole hold when absent.
    pub amount: Option<Money>,
    /// The agent capturing (must hold the paying wallet and be active).
    pub agent_id: AgentId,
    /// The retry key.
    pub idempotency: Idempotency,
    /// The time of the request.
    pub now: DateTime<Utc>,
    /// Who and where, for the audit row.
    pub audit: AuditContext,
}

/// An agent or owner voiding a hold: everything it reserved is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidCommand {
    /// The hold.
    pub hold_id: TransactionId,
    /// Who voids it: the agent holding the wallet, or its owner.
    pub principal: crate::model::Principal,
    /// The time of the request.
    pub now: DateTime<Utc>,
    /// Who and where, for the audit row.
    pub audit: AuditContext,
}

/// An owner moving the whole balance of one of its wallets to another of its wallets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepCommand {
    /// The id the transaction will have.
    pub transaction_id: TransactionId,
    /// The wallet emptied.
    pub from_wallet_id: WalletId,
    /// The wallet credited (same owner, same asset, not closed).
    pub to_wallet_id: WalletId,
    /// The owner (must own both).
    pub owner_id: OwnerId,
    /// The retry key.
    pub idempotency: Idempotency,
    /// The time of the request.
    pub now: DateTime<Utc>,
    /// Who and where, for the audit row.
    pub audit: AuditContext,
}

/// An owner approving or rejecting a transaction that waits for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecideCommand {
    /// The pending transaction.
    pub transaction_id: TransactionId,
    /// The owner deciding (must own the paying wallet).
    pub owner_id: OwnerId,
    /// Approve (post it if funds and policy still allow) or reject.
    pub approve: bool,
    /// The time of the decision.
    pub now: DateTime<Utc>,
    /// Who and where, for the audit row.
    pub audit: AuditContext,
}

/// What a posting produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingOutcome {
    /// The transaction as stored, with its status and decision.
    pub transaction: Transaction,
    /// True when an earlier request (the same idempotency key, or the same decision)
    /// produced it.
    pub replayed: bool,
    /// The balances the posting wrote (empty when no money moved); on a replay, the current
    /// balances of the wallets it touched. Written through to caches after the commit, so a
    /// retry repairs a cache the first attempt could not update.
    pub balances: Vec<WalletBalance>,
    /// The owner that was notified, with the new version of its notifications, when the
    /// posting held or denied the transaction.
    pub notified: Option<(OwnerId, i64)>,
}

/// What one run of an expiry sweep ended, each end in a PostgreSQL transaction of its own,
/// and the failure that kept it from ending the rest. The ends in `outcomes` are committed
/// whatever `failed` says: a caller must reflect and publish every one of them.
#[derive(Debug, Default)]
pub struct Ended {
    /// What each committed end wrote, in commit order.
    pub outcomes: Vec<PostingOutcome>,
    /// The first failure, if any (finding what is due, or ending one of them).
    pub failed: Option<crate::RepoError>,
}
