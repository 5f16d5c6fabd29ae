//! Transfers, payments and holds: an agent moving money out of a wallet it holds, or
//! reserving it to capture later.

use crate::pool::Begin as _;
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait as _, DatabaseConnection};
use waiaas_domain::model::{Actor, MandateRefusal, NewAuditEntry, TransactionStatus};
use waiaas_domain::notifications::NotificationKind;
use waiaas_domain::policy::{SpendRequest, evaluate_levels};
use waiaas_domain::ports::{PostingOutcome, SpendCommand};
use waiaas_domain::{Counterparty, Decision, PostingError};

use super::shared::{self, Entry, Movement, NewTransaction};
use crate::audit;
use crate::error::{DbContext as _, commit};

/// Decides on and posts a transfer or payment, or with `hold` (its expiry) places a hold:
/// the same decision, but the amount is reserved instead of moved.
pub(super) async fn post(
    db: &DatabaseConnection,
    cmd: &SpendCommand,
    hold: Option<DateTime<Utc>>,
) -> Result<PostingOutcome, PostingError> {
    let agent = *cmd.agent_id.as_uuid();
    let from_id = *cmd.from_wallet_id.as_uuid();
    let to_id = match &cmd.to {
        Counterparty::Wallet(w) => Some(*w.as_uuid()),
        Counterparty::External(_) => None,
    };
    let mut ids: Vec<_> = std::iter::once(from_id).chain(to_id).collect();
    ids.sort_unstable();

    let txn = db.start().await.doing("beginning a transfer")?;
    let locked = shared::lock_wallets(&txn, &ids, agent, cmd.idempotency.as_ref(), cmd.now).await?;
    // A repeat is answered from what the key produced, before anything that depends on the
    // current state (the agent's status, balances, the policy) is looked at.
    if locked.prior.is_some() {
        return shared::answer_replay(txn, agent, cmd.idempotency.as_ref(), &locked.wallets).await;
    }
    let mut locked = locked.wallets;
    let from_at = locked
        .iter()
        .position(|w| w.id == from_id)
        .ok_or(PostingError::WalletNotFound(cmd.from_wallet_id))?;
    if locked[from_at].agent_id != agent {
        return Err(PostingError::NotHolder(cmd.from_wallet_id));
    }
    if !locked[from_at].agent_active {
        return Err(PostingError::AgentNotActive);
    }
    // Holds past their expiry are released before anything is decided: what they reserved
    // is available again, whether or not the sweeper got to them yet. A replay found after
    // this point rolls the release back: it answers with the wallets as they were locked.
    let as_locked = locked.clone();
    let released = if locked[from_at].expired_held {
        shared::release_expired(&txn, &mut locked[from_at], cmd.now, &cmd.audit).await?
    } else {
        shared::Released::default()
    };
    let locked = locked;
    let from = &locked[from_at];
    let to = match (&cmd.to, to_id) {
        (Counterparty::Wallet(w), Some(id)) => {
            let to = locked
                .iter()
                .find(|l| l.id == id)
                .ok_or(PostingError::WalletNotFound(*w))?;
            if to.asset != from.asset {
                return Err(PostingError::AssetMismatch {
                    from: waiaas_domain::AssetCode::parse(&from.asset).context("stored asset")?,
                    to: waiaas_domain::AssetCode::parse(&to.asset).context("stored asset")?,
                });
            }
            if to.closed {
                return Err(PostingError::WalletClosed(*w));
            }
            Some(to)
        }
        _ => None,
    };

    // A mandate is locked after the wallets and before the budgets, and read as this
    // statement sees it: a use committed while this request waited for the wallet counts.
    let mandate = match cmd.mandate_id {
        None => None,
        Some(id) => {
            let refused = match txn
                .query_one_raw(shared::stmt(
                    crate::repo::mandates::LOCK_MANDATE,
                    vec![(*id.as_uuid()).into()],
                ))
                .await
                .doing("locking the mandate")?
            {
                None => Some(MandateRefusal::NotFound),
                Some(row) => {
                    let m = crate::repo::mandates::decode(&row)?;
                    if *m.wallet_id.as_uuid() == from_id {
                        m.covers(cmd.amount, &cmd.to, cmd.now).err()
                    } else {
                        Some(MandateRefusal::NotFound)
                    }
                }
            };
            if let Some(refusal) = refused {
                // A first attempt with this key may have committed (and used the mandate)
                // while this one waited for the locks: its answer is that attempt's.
                if let Some(key) = cmd.idempotency.as_ref()
                    && shared::key_used(&txn, agent, key).await?
                {
                    return shared::answer_replay(txn, agent, Some(key), &as_locked).await;
                }
                return Err(PostingError::Mandate(refusal));
            }
            Some(id)
        }
    };
    let limits = shared::limits(&txn, from, cmd.now).await?;
    let decision = evaluate_levels(
        &limits.rules,
        from.available(),
        &limits.usage,
        &limits.levels(),
        &SpendRequest {
            amount: cmd.amount,
            counterparty: &cmd.to,
            // A mandate that covers it pre-approves it; hard limits still apply.
            approved: mandate.is_some(),
        },
    );
    if let (Decision::Allow { .. }, Some(to)) = (&decision, to) {
        to.balance
            .checked_add(cmd.amount)
            .map_err(|_| PostingError::BalanceOverflow)?;
    }
    let shared::SpendRecord {
        recorded:
            shared::Recorded {
                status,
                rule,
                reason,
                budget,
                level,
            },
        kind,
        approval_deadline,
    } = shared::spend_record(
        &decision,
        hold.is_some(),
        to_id.is_some(),
        limits.rules.approval_timeout_s,
        cmd.now,
    );
    let destination = match &cmd.to {
        Counterparty::External(d) => Some(d.as_str()),
        Counterparty::Wallet(_) => None,
    };
    let inserted = shared::insert_transaction(
        &txn,
        NewTransaction {
            id: *cmd.transaction_id.as_uuid(),
            kind,
            status,
            asset: &from.asset,
            amount: cmd.amount,
            from_wallet: Some(from_id),
            to_wallet: to_id,
            destination,
            memo: cmd.memo.as_ref().map(|m| m.as_str()),
            metadata: &cmd.metadata,
            owner_id: from.owner_id,
            initiator: Actor::Agent(cmd.agent_id),
            idempotency: cmd.idempotency.as_ref(),
            rule,
            reason,
            budget,
            now: cmd.now,
            expires_at: hold,
            hold_id: None,
            level,
            approval_deadline,
            mandate_id: mandate.map(|m| *m.as_uuid()),
        },
    )
    .await?;
    let Some(transaction) = inserted else {
        // A concurrent request with the same key committed first (its row was not visible
        // when the locks were taken): nothing of this attempt is kept.
        return shared::answer_replay(txn, agent, cmd.idempotency.as_ref(), &as_locked).await;
    };

    if let Some(id) = mandate
        && matches!(
            status,
            TransactionStatus::Completed | TransactionStatus::Held
        )
    {
        txn.execute_raw(shared::stmt(
            crate::repo::mandates::USE_MANDATE,
            vec![
                (*id.as_uuid()).into(),
                cmd.amount.minor_units().into(),
                cmd.now.into(),
            ],
        ))
        .await
        .doing("using the mandate")?;
    }
    let mut balances = Vec::new();
    let mut notified = released.notified;
    let owner = waiaas_domain::OwnerId::from_uuid(from.owner_id);
    let audit_entry = |balances: &[waiaas_domain::WalletBalance]| NewAuditEntry {
        owner_id: Some(owner),
        action: "transaction.create",
        resource_type: "transaction",
        resource_id: transaction.id.to_string(),
        old_value: None,
        new_value: Some(serde_json::json!({ "transaction": &transaction, "balances": balances })),
    };
    match status {
        TransactionStatus::Completed => {
            let amount = cmd.amount.minor_units();
            let entries = match (to_id, destination) {
                (Some(to), _) => [Entry::wallet(from_id, -amount), Entry::wallet(to, amount)],
                (None, dest) => [
                    Entry::wallet(from_id, -amount),
                    Entry::external(dest.unwrap_or_default(), amount),
                ],
            };
            let movement = Movement {
                transaction_id: *transaction.id.as_uuid(),
                asset: &from.asset,
                now: cmd.now,
                entries: &entries,
                locked: &locked,
                spend: Some((from_id, cmd.amount)),
            };
            balances = shared::post_writes(&txn, &movement, &cmd.audit, audit_entry).await?;
        }
        TransactionStatus::Held => {
            let (balance, v) =
                shared::place_hold(&txn, from, &transaction, &cmd.audit, cmd.now).await?;
            notified = Some((owner, v));
            balances = vec![balance];
        }
        status => {
            let kind = match status {
                TransactionStatus::PendingApproval => Some(NotificationKind::ApprovalRequested),
                TransactionStatus::Denied => Some(NotificationKind::TransferDenied),
                _ => None,
            };
            if let Some(kind) = kind {
                let v = shared::notify(&txn, from.owner_id, kind, from_id, &transaction, cmd.now)
                    .await?;
                notified = Some((owner, v));
            }
            audit::record(&txn, &cmd.audit, audit_entry(&[]), cmd.now)
                .await
                .doing("auditing the transfer")?;
            if !released.holds.is_empty() {
                balances = vec![from.snapshot()?];
            }
        }
    }
    commit(txn, "committing the transfer").await?;
    Ok(PostingOutcome {
        transaction,
        replayed: false,
        balances,
        notified,
    })
}
