//! Moving money: deposits, transfers, payments, approvals, and reading transactions.

use serde::Serialize;

use super::Services;
use crate::errors::{AccessError, ApprovalError, PostingError};
use crate::ids::{MandateId, TransactionId, WalletId};
use crate::model::{AuditContext, Principal, Transaction, TransactionPage, TxCursor, TxFilter};
use crate::money::Money;
use crate::ports::{
    DecideCommand, DepositCommand, Idempotency, PostingOutcome, SpendCommand, SweepCommand,
};
use crate::values::{Counterparty, Destination, IdempotencyKey, Memo};

/// The largest metadata object a transaction may carry, serialised.
pub const MAX_METADATA_BYTES: usize = 4096;

/// An owner's deposit into one of its wallets, as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct DepositRequest {
    /// The credited wallet.
    pub wallet_id: WalletId,
    /// Minor units; must be above zero.
    pub amount: i64,
    /// A note.
    pub memo: Option<String>,
    /// Client metadata (a JSON object).
    pub metadata: Option<serde_json::Value>,
    /// The retry key.
    pub idempotency_key: Option<String>,
}

/// An agent's transfer to a wallet or payment to a destination, as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRequest {
    /// The paying wallet.
    pub from_wallet_id: WalletId,
    /// The receiving wallet, for a transfer.
    pub to_wallet_id: Option<WalletId>,
    /// The external destination, for a payment.
    pub destination: Option<String>,
    /// Minor units; must be above zero.
    pub amount: i64,
    /// A note.
    pub memo: Option<String>,
    /// Client metadata (a JSON object).
    pub metadata: Option<serde_json::Value>,
    /// The retry key.
    pub idempotency_key: Option<String>,
    /// A mandate of the paying wallet that pre-approves it: no approval is asked for if it
    /// covers the spend (hard limits still apply); a 422 if it does not.
    pub mandate_id: Option<MandateId>,
}

/// An owner's sweep: the whole balance of one of its wallets moved to another of its wallets
/// of the same asset. This is how money leaves the wallet of a deleted agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRequest {
    /// The wallet emptied.
    pub wallet_id: WalletId,
    /// The wallet credited.
    pub to_wallet_id: WalletId,
    /// The retry key.
    pub idempotency_key: Option<String>,
}

/// What the idempotency fingerprint covers: everything that changes the request's meaning.
#[derive(Serialize)]
struct Fingerprint<'a> {
    kind: &'static str,
    wallet: WalletId,
    to: Option<String>,
    amount: i64,
    memo: Option<&'a str>,
    metadata: &'a serde_json::Value,
    /// A hold's lifetime; absent from every other request, so their fingerprints are as
    /// they always were.
    #[serde(skip_serializing_if = "Option::is_none")]
    lifetime_s: Option<i64>,
    /// The mandate named, if any (absent otherwise, for the same reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    mandate: Option<MandateId>,
}

pub(super) fn parse_memo(memo: Option<&str>) -> Result<Option<Memo>, PostingError> {
    Ok(memo.map(Memo::parse).transpose()?)
}

fn parse_metadata(metadata: Option<serde_json::Value>) -> Result<serde_json::Value, PostingError> {
    match metadata {
        None | Some(serde_json::Value::Null) => {
            Ok(serde_json::Value::Object(serde_json::Map::new()))
        }
        Some(v @ serde_json::Value::Object(_)) => {
            let size = serde_json::to_vec(&v).map_or(usize::MAX, |b| b.len());
            if size > MAX_METADATA_BYTES || holds_nul(&v) {
                Err(PostingError::InvalidMetadata)
            } else {
                Ok(v)
            }
        }
        Some(_) => Err(PostingError::InvalidMetadata),
    }
}

/// Whether a JSON value holds a NUL character in a key or a string: PostgreSQL's `jsonb`
/// cannot store one.
fn holds_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

fn bind_key(
    key: Option<&str>,
    fingerprint: &Fingerprint<'_>,
) -> Result<Option<Idempotency>, PostingError> {
    key.map(|k| Ok(Idempotency::bind(IdempotencyKey::parse(k)?, fingerprint)))
        .transpose()
}

impl Services {
    /// Credits one of the owner's wallets with money from outside.
    ///
    /// # Errors
    /// `InvalidAmount`, `Invalid`, `InvalidMetadata`, `MissingIdempotencyKey`, `Forbidden`
    /// for an agent, `WalletNotFound`, `WalletClosed`, `BalanceOverflow`,
    /// `IdempotencyConflict`. Nothing is written then. A repeat with the same key returns the
    /// first result, whatever changed since.
    #[tracing::instrument(skip_all, fields(wallet_id = %req.wallet_id))]
    pub async fn deposit(
        &self,
        principal: &Principal,
        req: DepositRequest,
        audit: &AuditContext,
    ) -> Result<PostingOutcome, PostingError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(PostingError::Forbidden(
                "only the wallet's owner deposits into it",
            ));
        };
        let amount = Money::positive(req.amount)?;
        let memo = parse_memo(req.memo.as_deref())?;
        let metadata = parse_metadata(req.metadata)?;
        if req.idempotency_key.is_none() {
            return Err(PostingError::MissingIdempotencyKey);
        }
        let idempotency = bind_key(
            req.idempotency_key.as_deref(),
            &Fingerprint {
                kind: "deposit",
                wallet: req.wallet_id,
                to: None,
                amount: req.amount,
                memo: memo.as_ref().map(Memo::as_str),
                metadata: &metadata,
                lifetime_s: None,
                mandate: None,
            },
        )?;
        self.visible_wallet(principal, req.wallet_id)
            .await
            .map_err(|e| not_found_as(e, req.wallet_id))?;
        let cmd = DepositCommand {
            transaction_id: TransactionId::new(),
            wallet_id: req.wallet_id,
            owner_id: *owner_id,
            amount,
            memo,
            metadata,
            idempotency,
            now: self.ports.clock.now(),
            audit: audit.clone(),
        };
        let outcome = self.ports.transactions.post_deposit(&cmd).await?;
        self.announce(&outcome);
        Ok(outcome)
    }

    /// Moves money out of a wallet the calling agent holds: to another wallet of the same
    /// asset, or to an external destination. The wallet's policy decides; a denial, a hold
    /// for approval or insufficient funds is recorded and returned as the outcome's status.
    ///
    /// # Errors
    /// Bad input (`InvalidAmount`, `Invalid`, `InvalidMetadata`, `AmbiguousTarget`,
    /// `SameWallet`, `MissingIdempotencyKey`), `Forbidden` for an owner, `WalletNotFound`,
    /// `NotHolder`, `AssetMismatch`, `AgentNotActive`, `WalletClosed`, `BalanceOverflow`,
    /// `IdempotencyConflict`. Nothing is written then. A repeat with the same key returns the
    /// first result, whatever changed since (the agent's status, balances, the policy).
    #[tracing::instrument(skip_all, fields(wallet_id = %req.from_wallet_id))]
    pub async fn transfer(
        &self,
        principal: &Principal,
        req: TransferRequest,
        audit: &AuditContext,
    ) -> Result<PostingOutcome, PostingError> {
        let cmd = self
            .spend_command(principal, req, "spend", None, audit)
            .await?;
        let outcome = self.ports.transactions.post_spend(&cmd).await?;
        self.announce(&outcome);
        Ok(outcome)
    }

    /// Checks an agent's transfer, payment or hold and builds its command: the input, who
    /// holds the paying wallet, the assets of both wallets. `kind` and `lifetime_s` go into
    /// the idempotency fingerprint.
    pub(super) async fn spend_command(
        &self,
        principal: &Principal,
        req: TransferRequest,
        kind: &'static str,
        lifetime_s: Option<i64>,
        audit: &AuditContext,
    ) -> Result<SpendCommand, PostingError> {
        let Principal::Agent { agent_id, owner_id } = principal else {
            return Err(PostingError::Forbidden(
                "only the agent holding a wallet moves money out of it",
            ));
        };
        let amount = Money::positive(req.amount)?;
        let to = match (req.to_wallet_id, req.destination.as_deref()) {
            (Some(w), None) => Counterparty::Wallet(w),
            (None, Some(d)) => Counterparty::External(Destination::parse(d)?),
            _ => return Err(PostingError::AmbiguousTarget),
        };
        if to == Counterparty::Wallet(req.from_wallet_id) {
            return Err(PostingError::SameWallet);
        }
        let memo = parse_memo(req.memo.as_deref())?;
        let metadata = parse_metadata(req.metadata)?;
        if req.idempotency_key.is_none() {
            return Err(PostingError::MissingIdempotencyKey);
        }
        let idempotency = bind_key(
            req.idempotency_key.as_deref(),
            &Fingerprint {
                kind,
                wallet: req.from_wallet_id,
                to: Some(to.to_string()),
                amount: req.amount,
                memo: memo.as_ref().map(Memo::as_str),
                metadata: &metadata,
                lifetime_s,
                mandate: req.mandate_id,
            },
        )?;

        let from = self
            .ports
            .wallets
            .ownership(req.from_wallet_id)
            .await?
            .ok_or(PostingError::WalletNotFound(req.from_wallet_id))?;
        if from.agent_id != *agent_id {
            return Err(PostingError::NotHolder(req.from_wallet_id));
        }
        if let Counterparty::Wallet(to_id) = &to {
            let target = self
                .ports
                .wallets
                .ownership(*to_id)
                .await?
                .ok_or(PostingError::WalletNotFound(*to_id))?;
            if target.asset != from.asset {
                return Err(PostingError::AssetMismatch {
                    from: from.asset,
                    to: target.asset,
                });
            }
        }
        Ok(SpendCommand {
            transaction_id: TransactionId::new(),
            from_wallet_id: req.from_wallet_id,
            to,
            amount,
            agent_id: *agent_id,
            owner_id: *owner_id,
            memo,
            metadata,
            idempotency,
            mandate_id: req.mandate_id,
            now: self.ports.clock.now(),
            audit: audit.clone(),
        })
    }

    /// Moves the whole balance of one of the owner's wallets to another of its wallets of the
    /// same asset: the way out for the money of a deleted agent's (closed) wallet. Audited;
    /// the wallet's policy does not apply (it governs the agent, not the owner).
    ///
    /// # Errors
    /// `MissingIdempotencyKey`, `SameWallet`, `Forbidden` for an agent, `WalletNotFound`,
    /// `AssetMismatch`, `WalletClosed` for a closed target, `NothingToSweep`,
    /// `BalanceOverflow`, `IdempotencyConflict`. Nothing is written then.
    #[tracing::instrument(skip_all, fields(wallet_id = %req.wallet_id))]
    pub async fn sweep(
        &self,
        principal: &Principal,
        req: SweepRequest,
        audit: &AuditContext,
    ) -> Result<PostingOutcome, PostingError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(PostingError::Forbidden("only the wallet's owner sweeps it"));
        };
        if req.wallet_id == req.to_wallet_id {
            return Err(PostingError::SameWallet);
        }
        let key = req
            .idempotency_key
            .as_deref()
            .ok_or(PostingError::MissingIdempotencyKey)?;
        let idempotency = Idempotency::bind(
            IdempotencyKey::parse(key)?,
            &Fingerprint {
                kind: "sweep",
                wallet: req.wallet_id,
                to: Some(Counterparty::Wallet(req.to_wallet_id).to_string()),
                amount: 0,
                memo: None,
                metadata: &serde_json::Value::Null,
                lifetime_s: None,
                mandate: None,
            },
        );
        let from = self
            .visible_wallet(principal, req.wallet_id)
            .await
            .map_err(|e| not_found_as(e, req.wallet_id))?;
        let to = self
            .visible_wallet(principal, req.to_wallet_id)
            .await
            .map_err(|e| not_found_as(e, req.to_wallet_id))?;
        if from.asset != to.asset {
            return Err(PostingError::AssetMismatch {
                from: from.asset,
                to: to.asset,
            });
        }
        let cmd = SweepCommand {
            transaction_id: TransactionId::new(),
            from_wallet_id: req.wallet_id,
            to_wallet_id: req.to_wallet_id,
            owner_id: *owner_id,
            idempotency,
            now: self.ports.clock.now(),
            audit: audit.clone(),
        };
        let outcome = self.ports.transactions.post_sweep(&cmd).await?;
        self.announce(&outcome);
        Ok(outcome)
    }

    /// Approves or rejects a transaction waiting for approval. An approved one is posted
    /// only if the wallet's funds and policy (all rules but the approval threshold) still
    /// allow it; otherwise it ends denied or failed, and no money moves. Repeating the same
    /// decision returns the transaction as that decision left it (a replay), whatever
    /// changed since.
    ///
    /// # Errors
    /// `Forbidden` for an agent, `NotFound` when not the owner's, `NotPending` when it was
    /// never pending or the owner decided the other way.
    #[tracing::instrument(skip_all, fields(transaction_id = %id, approve))]
    pub async fn decide(
        &self,
        principal: &Principal,
        id: TransactionId,
        approve: bool,
        audit: &AuditContext,
    ) -> Result<PostingOutcome, ApprovalError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(ApprovalError::Forbidden);
        };
        let cmd = DecideCommand {
            transaction_id: id,
            owner_id: *owner_id,
            approve,
            now: self.ports.clock.now(),
            audit: audit.clone(),
        };
        let outcome = self.ports.transactions.decide(&cmd).await?;
        self.announce(&outcome);
        Ok(outcome)
    }

    /// A transaction touching a wallet the principal may see.
    ///
    /// # Errors
    /// `NotFound` otherwise.
    pub async fn get_transaction(
        &self,
        principal: &Principal,
        id: TransactionId,
    ) -> Result<Transaction, AccessError> {
        let tx = self
            .ports
            .transactions
            .get(id)
            .await?
            .ok_or(AccessError::NotFound)?;
        let now = self.ports.clock.now();
        for wallet_id in tx.wallets() {
            match self.visible_wallet(principal, wallet_id).await {
                Ok(_) => return Ok(as_of(tx, now)),
                Err(AccessError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Err(AccessError::NotFound)
    }

    /// A page of a wallet's transactions that match the filter, newest first.
    ///
    /// # Errors
    /// `Invalid` for a filter out of bounds; `NotFound` when the wallet is not visible to
    /// the principal.
    pub async fn list_transactions(
        &self,
        principal: &Principal,
        wallet_id: WalletId,
        filter: &TxFilter,
        limit: Option<u32>,
        after: Option<TxCursor>,
    ) -> Result<TransactionPage, AccessError> {
        filter.validate()?;
        self.visible_wallet(principal, wallet_id).await?;
        let now = self.ports.clock.now();
        let filter = TxFilter {
            as_of: Some(now),
            ..filter.clone()
        };
        let page = self
            .ports
            .transactions
            .list_for_wallet(wallet_id, &filter, &Self::page(limit, after))
            .await?;
        Ok(page_as_of(page, now))
    }

    /// A page of the transactions of every wallet of the calling owner that match the
    /// filter, newest first.
    ///
    /// # Errors
    /// `Invalid` for a filter out of bounds; `Forbidden` for an agent.
    pub async fn owner_transactions(
        &self,
        principal: &Principal,
        filter: &TxFilter,
        limit: Option<u32>,
        after: Option<TxCursor>,
    ) -> Result<TransactionPage, AccessError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(AccessError::Forbidden(
                "only owners list transactions across wallets",
            ));
        };
        filter.validate()?;
        let now = self.ports.clock.now();
        let filter = TxFilter {
            as_of: Some(now),
            ..filter.clone()
        };
        let page = self
            .ports
            .transactions
            .list_for_owner(*owner_id, &filter, &Self::page(limit, after))
            .await?;
        Ok(page_as_of(page, now))
    }
}

/// A transaction as it stands at `now` (a hold past its expiry reads `expired`).
fn as_of(mut tx: Transaction, now: chrono::DateTime<chrono::Utc>) -> Transaction {
    tx.status = tx.status_at(now);
    tx
}

fn page_as_of(mut page: TransactionPage, now: chrono::DateTime<chrono::Utc>) -> TransactionPage {
    page.items = page.items.into_iter().map(|t| as_of(t, now)).collect();
    page
}

fn not_found_as(e: AccessError, wallet_id: WalletId) -> PostingError {
    match e {
        AccessError::Unknown(e) => PostingError::Unknown(e),
        _ => PostingError::WalletNotFound(wallet_id),
    }
}
