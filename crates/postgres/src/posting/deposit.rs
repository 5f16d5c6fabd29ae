//! Deposits: an owner crediting one of its wallets with money from outside.

use anyhow::Context as _;
use sea_orm::{DatabaseConnection, TransactionTrait};
use waiaas_domain::PostingError;
use waiaas_domain::model::{Actor, Budget, NewAuditEntry, TransactionKind, TransactionStatus};
use waiaas_domain::ports::{DepositCommand, PostingOutcome};

use super::shared::{self, Entry, Movement, NewTransaction};

/// The outside-world account deposits come from.
const DEPOSITS: &str = "deposits";

pub(super) async fn post(
    db: &DatabaseConnection,
    cmd: &DepositCommand,
) -> Result<PostingOutcome, PostingError> {
    let wallet_id = *cmd.wallet_id.as_uuid();
    let txn = db.begin().await.context("beginning a deposit")?;
    let locked = shared::lock_wallets(&txn, &[wallet_id]).await?;
    let wallet = locked
        .first()
        .filter(|w| w.owner_id == *cmd.owner_id.as_uuid())
        .ok_or(PostingError::WalletNotFound(cmd.wallet_id))?;
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
        },
    )
    .await?;
    let Some(transaction) = inserted else {
        txn.rollback()
            .await
            .context("rolling back a repeated request")?;
        let idempotency = cmd
            .idempotency
            .as_ref()
            .context("conflict without an idempotency key")?;
        return shared::replay(db, *cmd.owner_id.as_uuid(), idempotency).await;
    };
    let amount = cmd.amount.minor_units();
    let entries = [
        Entry::wallet(wallet_id, amount),
        Entry::external(DEPOSITS, -amount),
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
    txn.commit().await.context("committing the deposit")?;
    Ok(PostingOutcome {
        transaction,
        replayed: false,
        balances,
        notified: None,
    })
}
