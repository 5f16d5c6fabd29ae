//! Deposits: an owner crediting one of its wallets with money from outside.

use crate::pool::Begin as _;
use sea_orm::DatabaseConnection;
use waiaas_domain::PostingError;
use waiaas_domain::model::{Actor, Budget, NewAuditEntry, TransactionKind, TransactionStatus};
use waiaas_domain::ports::{DepositCommand, PostingOutcome};

use super::shared::{self, Entry, Movement, NewTransaction};
use crate::error::{DbContext as _, commit};

/// The platform's account that money from outside comes from (`system:deposits`).
const DEPOSITS: &str = "deposits";

pub(super) async fn post(
    db: &DatabaseConnection,
    cmd: &DepositCommand,
) -> Result<PostingOutcome, PostingError> {
    let wallet_id = *cmd.wallet_id.as_uuid();
    let owner = *cmd.owner_id.as_uuid();
    let txn = db.start().await.doing("beginning a deposit")?;
    let locked =
        shared::lock_wallets(&txn, &[wallet_id], owner, cmd.idempotency.as_ref(), cmd.now).await?;
    if locked.prior.is_some() {
        return shared::answer_replay(txn, owner, cmd.idempotency.as_ref(), &locked.wallets).await;
    }
    let locked = locked.wallets;
    let wallet = locked
        .first()
        .filter(|w| w.owner_id == owner)
        .ok_or(PostingError::WalletNotFound(cmd.wallet_id))?;
    if wallet.closed {
        return Err(PostingError::WalletClosed(cmd.wallet_id));
    }
    wallet
        .balance
        .checked_add(cmd.amount)
        .map_err(|_| PostingError::BalanceOverflow)?;

    let inserted = shared::insert_transaction(
        &txn,
        NewTransaction {
            id: *cmd.transaction_id.as_uuid(),
            kind: TransactionKind::Deposit,
            status: TransactionStatus::Completed,
            asset: &wallet.asset,
            amount: cmd.amount,
            from_wallet: None,
            to_wallet: Some(wallet_id),
            destination: None,
            memo: cmd.memo.as_ref().map(|m| m.as_str()),
            metadata: &cmd.metadata,
            owner_id: wallet.owner_id,
            initiator: Actor::Owner(cmd.owner_id),
            idempotency: cmd.idempotency.as_ref(),
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
        return shared::answer_replay(txn, owner, cmd.idempotency.as_ref(), &locked).await;
    };
    let amount = cmd.amount.minor_units();
    let entries = [
        Entry::wallet(wallet_id, amount),
        Entry::system(DEPOSITS, -amount),
    ];
    let movement = Movement {
        transaction_id: *transaction.id.as_uuid(),
        asset: &wallet.asset,
        now: cmd.now,
        entries: &entries,
        locked: &locked,
        spend: None,
    };
    let balances = shared::post_writes(&txn, &movement, &cmd.audit, |balances| NewAuditEntry {
        owner_id: Some(cmd.owner_id),
        action: "transaction.create",
        resource_type: "transaction",
        resource_id: transaction.id.to_string(),
        old_value: None,
        new_value: Some(serde_json::json!({ "transaction": &transaction, "balances": balances })),
    })
    .await?;
    commit(txn, "committing the deposit").await?;
    Ok(PostingOutcome {
        transaction,
        replayed: false,
        balances,
        notified: None,
    })
}
