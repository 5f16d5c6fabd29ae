//! An owner's decision on a transaction waiting for approval. Approval re-runs the policy
//! (all rules but the approval threshold) and the funds check under the wallets' locks: money
//! moves (or, for a hold, is reserved) only if both still allow it. The wallets are locked
//! before the transaction row, as everywhere.

use crate::pool::Begin as _;
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult};
use waiaas_domain::model::{
    Budget, NewAuditEntry, OwnerDecision, TransactionKind, TransactionStatus,
};
use waiaas_domain::policy::{SpendRequest, evaluate_levels};
use waiaas_domain::ports::{DecideCommand, PostingOutcome};
use waiaas_domain::{ApprovalError, Decision, Money, Rule, Transaction, WalletBalance};

use super::shared::{self, Entry, Movement, stmt, uuid_array};
use super::sql;
use crate::audit;
use crate::convert;
use crate::entity::transactions;
use crate::error::{DbContext as _, commit};

pub(super) async fn decide(
    db: &DatabaseConnection,
    cmd: &DecideCommand,
) -> Result<PostingOutcome, ApprovalError> {
    let txn = db.start().await.doing("beginning a decision")?;
    let read = |sql: &'static str| {
        let txn = &txn;
        async move {
            let row = txn
                .query_one_raw(stmt(sql, vec![(*cmd.transaction_id.as_uuid()).into()]))
                .await
                .doing("reading the transaction")?
                .ok_or(ApprovalError::NotFound(cmd.transaction_id))?;
            let model = transactions::Model::from_query_result(&row, "")
                .context("decoding the transaction")?;
            if model.owner_id != *cmd.owner_id.as_uuid() {
                return Err(ApprovalError::NotFound(cmd.transaction_id));
            }
            Ok(Transaction::try_from(model)?)
        }
    };
    // Which wallets to lock comes from an unlocked read (they never change); the row itself
    // is locked and read again after them.
    let peek = read(sql::FIND_TRANSACTION).await?;
    let mut ids: Vec<_> = peek.wallets().iter().map(|w| *w.as_uuid()).collect();
    ids.sort_unstable();
    let locked = shared::lock_wallets(&txn, &ids, *cmd.owner_id.as_uuid(), None, cmd.now)
        .await?
        .wallets;
    let before = read(sql::LOCK_TRANSACTION).await?;
    // Past its approval deadline a transaction is expired, swept or not: too late to decide.
    if before.approval_deadline.is_some()
        && before.decision.is_none()
        && before.status_at(cmd.now) == TransactionStatus::Expired
    {
        return Err(ApprovalError::Expired);
    }
    if before.status != TransactionStatus::PendingApproval {
        let asked = if cmd.approve {
            OwnerDecision::Approved
        } else {
            OwnerDecision::Rejected
        };
        // The same decision again (a retry whose answer was lost) is answered with what the
        // first one did, whatever changed since; anything else was never pending.
        if before.decision == Some(asked) {
            let balances = current_balances(&txn, &before).await?;
            txn.rollback().await.doing("ending a repeated decision")?;
            return Ok(PostingOutcome {
                transaction: before,
                replayed: true,
                balances,
                notified: None,
            });
        }
        return Err(ApprovalError::NotPending(before.status));
    }

    let audit_entry = |settled: &Transaction, balances: &[WalletBalance]| NewAuditEntry {
        owner_id: Some(cmd.owner_id),
        action: if cmd.approve {
            "transaction.approve"
        } else {
            "transaction.reject"
        },
        resource_type: "transaction",
        resource_id: settled.id.to_string(),
        old_value: Some(serde_json::json!({ "status": before.status })),
        new_value: Some(serde_json::json!({ "transaction": settled, "balances": balances })),
    };
    let (settled, balances, notified) = if cmd.approve {
        approve(&txn, cmd, &before, locked, &audit_entry).await?
    } else {
        let s = Settlement {
            reason: Some("rejected by the owner".to_owned()),
            budget: before.budget,
            ..Settlement::new(TransactionStatus::Rejected)
        };
        (settle(&txn, cmd, s).await?, Vec::new(), None)
    };
    if settled.status != TransactionStatus::Completed {
        // No money moved, so no posting wrote the decision's audit row: write it here (with
        // the balances a release of expired holds or a placed hold changed).
        audit::record(&txn, &cmd.audit, audit_entry(&settled, &balances), cmd.now)
            .await
            .doing("auditing the decision")?;
    }
    commit(txn, "committing the decision").await?;
    Ok(PostingOutcome {
        transaction: settled,
        replayed: false,
        balances,
        notified,
    })
}

struct Settlement {
    status: TransactionStatus,
    rule: Option<Rule>,
    reason: Option<String>,
    budget: Budget,
    /// A hold approved and held: now.
    held_at: Option<DateTime<Utc>>,
    /// A hold that ended without money moving: 0.
    captured: Option<i64>,
    /// The level whose rule denied it.
    level: Option<waiaas_domain::Level>,
}

impl Settlement {
    /// A settlement in `status` that records nothing else.
    fn new(status: TransactionStatus) -> Self {
        Self {
            status,
            rule: None,
            reason: None,
            budget: Budget::default(),
            held_at: None,
            captured: None,
            level: None,
        }
    }
}

type Approved = (
    Transaction,
    Vec<WalletBalance>,
    Option<(waiaas_domain::OwnerId, i64)>,
);

async fn approve(
    txn: &DatabaseTransaction,
    cmd: &DecideCommand,
    pending: &Transaction,
    mut locked: Vec<shared::LockedWallet>,
    audit_entry: &impl Fn(&Transaction, &[WalletBalance]) -> NewAuditEntry,
) -> Result<Approved, ApprovalError> {
    let from_id = *pending
        .from_wallet_id
        .context("a pending transaction has a paying wallet")?
        .as_uuid();
    let to_id = pending.to_wallet_id.map(|w| *w.as_uuid());
    let from_at = locked
        .iter()
        .position(|w| w.id == from_id)
        .context("the paying wallet exists")?;
    let is_hold = pending.kind == TransactionKind::Hold;
    if is_hold && pending.hold.expires_at.is_some_and(|at| at <= cmd.now) {
        let s = Settlement {
            reason: Some("the hold expired before it was approved".to_owned()),
            captured: Some(0),
            ..Settlement::new(TransactionStatus::Expired)
        };
        return Ok((settle(txn, cmd, s).await?, Vec::new(), None));
    }
    let released = if locked[from_at].agent_active && locked[from_at].expired_held {
        shared::release_expired(txn, &mut locked[from_at], cmd.now, &cmd.audit).await?
    } else {
        shared::Released::default()
    };
    let locked = locked;
    let from = &locked[from_at];
    let refused = if !from.agent_active {
        Some("the agent is no longer active")
    } else if to_id.is_some_and(|to| locked.iter().any(|w| w.id == to && w.closed)) {
        Some("the receiving wallet was closed (its agent was deleted)")
    } else {
        None
    };
    // What the release of expired holds changed is committed with the decision, and
    // written through like any other change.
    let released_balances = if released.holds.is_empty() {
        Vec::new()
    } else {
        vec![from.snapshot()?]
    };
    if let Some(reason) = refused {
        let s = Settlement {
            reason: Some(reason.to_owned()),
            ..Settlement::new(TransactionStatus::Failed)
        };
        return Ok((
            settle(txn, cmd, s).await?,
            released_balances,
            released.notified,
        ));
    }
    let counterparty = pending
        .counterparty()
        .context("a pending transaction has a counterparty")?;
    let limits = shared::limits(txn, from, cmd.now).await?;
    let decision = evaluate_levels(
        &limits.rules,
        from.available(),
        &limits.usage,
        &limits.levels(),
        &SpendRequest {
            amount: pending.amount,
            counterparty: &counterparty,
            approved: true,
        },
    );
    if let (Decision::Allow { .. }, Some(to_id)) = (&decision, to_id) {
        let to = locked
            .iter()
            .find(|w| w.id == to_id)
            .context("the receiving wallet exists")?;
        to.balance
            .checked_add(pending.amount)
            .map_err(|_| ApprovalError::BalanceOverflow)?;
    }
    let shared::Recorded {
        mut status,
        rule,
        reason,
        budget,
        level,
    } = shared::recorded(&decision);
    let held = is_hold && status == TransactionStatus::Completed;
    if held {
        status = TransactionStatus::Held;
    }
    let settled = settle(
        txn,
        cmd,
        Settlement {
            status,
            rule,
            reason,
            budget,
            held_at: held.then_some(cmd.now),
            captured: None,
            level,
        },
    )
    .await?;
    if held {
        let (balance, v) = shared::place_hold(txn, from, &settled, &cmd.audit, cmd.now).await?;
        let owner = waiaas_domain::OwnerId::from_uuid(from.owner_id);
        return Ok((settled, vec![balance], Some((owner, v))));
    }
    if status != TransactionStatus::Completed {
        return Ok((settled, released_balances, released.notified));
    }
    let amount = pending.amount.minor_units();
    let entries = match (to_id, &pending.destination) {
        (Some(to), _) => [Entry::wallet(from_id, -amount), Entry::wallet(to, amount)],
        (None, dest) => [
            Entry::wallet(from_id, -amount),
            Entry::external(
                dest.as_ref().map(|d| d.as_str()).unwrap_or_default(),
                amount,
            ),
        ],
    };
    let movement = Movement {
        transaction_id: *pending.id.as_uuid(),
        asset: pending.asset.as_str(),
        now: cmd.now,
        entries: &entries,
        locked: &locked,
        spend: Some((from_id, pending.amount)),
    };
    let balances =
        shared::post_writes(txn, &movement, &cmd.audit, |b| audit_entry(&settled, b)).await?;
    Ok((settled, balances, released.notified))
}

async fn settle(
    txn: &DatabaseTransaction,
    cmd: &DecideCommand,
    s: Settlement,
) -> Result<Transaction, ApprovalError> {
    let posted_at = (s.status == TransactionStatus::Completed).then_some(cmd.now);
    let decision = if cmd.approve {
        OwnerDecision::Approved
    } else {
        OwnerDecision::Rejected
    };
    let row = txn
        .query_one_raw(stmt(
            sql::SETTLE_TRANSACTION,
            vec![
                (*cmd.transaction_id.as_uuid()).into(),
                s.status.as_str().into(),
                s.rule.map(|r| r.as_str().to_owned()).into(),
                s.reason.into(),
                s.budget.daily_remaining.map(Money::minor_units).into(),
                s.budget
                    .hourly_remaining
                    .map(|h| i32::try_from(h).unwrap_or(i32::MAX))
                    .into(),
                cmd.now.into(),
                posted_at.into(),
                decision.as_str().into(),
                s.held_at.into(),
                s.captured.into(),
                serde_json::to_value(s.budget)
                    .context("encoding the budget")?
                    .into(),
                s.level.map(|l| l.as_str().to_owned()).into(),
            ],
        ))
        .await
        .doing("settling the transaction")?
        .context("the locked transaction exists")?;
    let model =
        transactions::Model::from_query_result(&row, "").context("decoding the transaction")?;
    Ok(Transaction::try_from(model)?)
}

/// The current balances of the wallets a transaction touched, for a replayed decision to
/// write through.
async fn current_balances(
    txn: &DatabaseTransaction,
    tx: &Transaction,
) -> anyhow::Result<Vec<WalletBalance>> {
    let ids = tx.wallets().into_iter().map(|w| *w.as_uuid());
    let rows = txn
        .query_all_raw(stmt(sql::BALANCES, vec![uuid_array(ids)]))
        .await
        .doing("reading balances")?;
    rows.iter()
        .map(|r| {
            convert::balance(
                r.try_get("", "id")?,
                &r.try_get::<String>("", "asset")?,
                r.try_get("", "balance")?,
                r.try_get("", "held")?,
                r.try_get("", "version")?,
            )
        })
        .collect()
}
