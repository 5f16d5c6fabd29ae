//! Sweeps: an owner moving the whole balance of one of its wallets (typically the closed
//! wallet of a deleted agent) to another of its wallets of the same asset.

use crate::pool::Begin as _;
use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use waiaas_domain::model::{Actor, Budget, NewAuditEntry, TransactionKind, TransactionStatus};
use waiaas_domain::ports::{PostingOutcome, SweepCommand};
use waiaas_domain::{AssetCode, PostingError};

use super::shared::{self, Entry, Movement, NewTransaction};
use crate::error::{DbContext as _, commit};

pub(super) async fn post(
    db: &DatabaseConnection,
    cmd: &SweepCommand,
) -> Result<PostingOutcome, PostingError> {
    let owner = *cmd.owner_id.as_uuid();
    let from_id = *cmd.from_wallet_id.as_uuid();
    let to_id = *cmd.to_wallet_id.as_uuid();
    let mut ids = [from_id, to_id];
    ids.sort_unstable();

    let txn = db.start().await.doing("beginning a sweep")?;
    let locked = shared::lock_wallets(&txn, &ids, owner, Some(&cmd.idempotency), cmd.now).await?;
    if locked.prior.is_some() {
        return shared::answer_replay(txn, owner, Some(&cmd.idempotency), &locked.wallets).await;
    }
    let locked = locked.wallets;
    let find = |id| locked.iter().find(|w| w.id == id && w.owner_id == owner);
    let from = find(from_id).ok_or(PostingError::WalletNotFound(cmd.from_wallet_id))?;
    let to = find(to_id).ok_or(PostingError::WalletNotFound(cmd.to_wallet_id))?;
    if from.asset != to.asset {
        return Err(PostingError::AssetMismatch {
            from: AssetCode::parse(&from.asset).context("stored asset")?,
            to: AssetCode::parse(&to.asset).context("stored asset")?,
        });
    }
    if to.closed {
        return Err(PostingError::WalletClosed(cmd.to_wallet_id));
    }
    // What open holds reserve stays: the holds end by capture, void or expiry.
    let amount = from.available();
    if amount.is_zero() {
        return Err(PostingError::NothingToSweep(cmd.from_wallet_id));
    }
    to.balance
        .checked_add(amount)
        .map_err(|_| PostingError::BalanceOverflow)?;

    let inserted = shared::insert_transaction(
        &txn,
        NewTransaction {
            id: *cmd.transaction_id.as_uuid(),
            kind: TransactionKind::Sweep,
            status: TransactionStatus::Completed,
            asset: &from.asset,
            amount,
            from_wallet: Some(from_id),
            to_wallet: Some(to_id),
            destination: None,
            memo: None,
            metadata: &serde_json::json!({}),
            owner_id: owner,
            initiator: Actor::Owner(cmd.owner_id),
            idempotency: Some(&cmd.idempotency),
            rule: None,
            reason: None,
            budget: Budget::default(),
            now: cmd.now,
            expires_at: None,
            hold_id: None,
            level: None,
            approval_deadline: None,
            mandate_id: None,
        },
    )
    .await?;
    let Some(transaction) = inserted else {
        return shared::answer_replay(txn, owner, Some(&cmd.idempotency), &locked).await;
    };
    let minor = amount.minor_units();
    let entries = [Entry::wallet(from_id, -minor), Entry::wallet(to_id, minor)];
    let movement = Movement {
        transaction_id: *transaction.id.as_uuid(),
        asset: &from.asset,
        now: cmd.now,
        entries: &entries,
        locked: &locked,
        // A sweep is the owner's, not the agent's spending: no budget is charged.
        spend: None,
    };
    let balances = shared::post_writes(&txn, &movement, &cmd.audit, |balances| NewAuditEntry {
        owner_id: Some(cmd.owner_id),
        action: "wallet.sweep",
        resource_type: "wallet",
        resource_id: cmd.from_wallet_id.to_string(),
        old_value: None,
        new_value: Some(serde_json::json!({ "transaction": &transaction, "balances": balances })),
    })
    .await?;
    commit(txn, "committing the sweep").await?;
    Ok(PostingOutcome {
        transaction,
        replayed: false,
        balances,
        notified: None,
    })
}
