//! The second phase of a hold: capture (a completed transfer or payment of at most the held
//! amount, the rest released), void (everything released) and expiry (the sweeper's
//! release). Each locks the hold's wallets before the hold's row, like every posting.

use crate::pool::Begin as _;
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DatabaseTransaction, FromQueryResult};
use uuid::Uuid;
use waiaas_domain::model::{Actor, Budget, NewAuditEntry, TransactionKind, TransactionStatus};
use waiaas_domain::notifications::NotificationKind;
use waiaas_domain::ports::{CaptureCommand, Ended, PostingOutcome, VoidCommand};
use waiaas_domain::{
    AuditContext, OwnerId, PostingError, Principal, RepoError, Transaction, TransactionId,
};

use super::shared::{self, Entry, LockedWallet, Movement, NewTransaction, stmt};
use super::sql;
use crate::convert;
use crate::entity::transactions;
use crate::error::{DbContext as _, RepoContext as _, commit};
use crate::{Postgres, Work};

/// Reads a hold: unlocked (to learn its wallets), or locked (after them).
async fn read_hold(
    txn: &DatabaseTransaction,
    id: TransactionId,
    sql: &'static str,
) -> Result<Transaction, PostingError> {
    let row = txn
        .query_one_raw(stmt(sql, vec![(*id.as_uuid()).into()]))
        .await
        .doing("reading the hold")?
        .ok_or(PostingError::HoldNotFound(id))?;
    let model = transactions::Model::from_query_result(&row, "").context("decoding the hold")?;
    let tx = Transaction::try_from(model)?;
    if tx.kind == TransactionKind::Hold {
        Ok(tx)
    } else {
        Err(PostingError::HoldNotFound(id))
    }
}

/// The ids of a hold's wallets, in locking order.
fn wallet_ids(hold: &Transaction) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = hold.wallets().iter().map(|w| *w.as_uuid()).collect();
    ids.sort_unstable();
    ids
}

/// Applies `RELEASE_HOLD` to a held hold: returns it ended, and updates `wallet`.
async fn release(
    txn: &DatabaseTransaction,
    hold: TransactionId,
    status: TransactionStatus,
    captured: i64,
    bump: bool,
    wallet: &mut LockedWallet,
    now: DateTime<Utc>,
) -> anyhow::Result<Transaction> {
    let row = txn
        .query_one_raw(stmt(
            sql::RELEASE_HOLD,
            vec![
                (*hold.as_uuid()).into(),
                status.as_str().into(),
                captured.into(),
                now.into(),
                i64::from(bump).into(),
            ],
        ))
        .await
        .doing("releasing the hold")?
        .context("the locked hold is held")?;
    wallet.held = convert::money(row.try_get("", "wallet_held")?, "held")?;
    wallet.version = row.try_get("", "wallet_version")?;
    Transaction::try_from(transactions::Model::from_query_result(&row, "")?)
}

pub(super) async fn capture(
    db: &DatabaseConnection,
    cmd: &CaptureCommand,
) -> Result<PostingOutcome, PostingError> {
    let agent = *cmd.agent_id.as_uuid();
    let txn = db.start().await.doing("beginning a capture")?;
    let peek = read_hold(&txn, cmd.hold_id, sql::FIND_TRANSACTION).await?;
    let ids = wallet_ids(&peek);
    let locked = shared::lock_wallets(&txn, &ids, agent, Some(&cmd.idempotency), cmd.now).await?;
    if locked.prior.is_some() {
        return shared::answer_replay(txn, agent, Some(&cmd.idempotency), &locked.wallets).await;
    }
    let mut locked = locked.wallets;
    let from_id = *peek
        .from_wallet_id
        .context("a hold has a paying wallet")?
        .as_uuid();
    let from_at = locked
        .iter()
        .position(|w| w.id == from_id)
        .context("the hold's wallet exists")?;
    // Another agent's hold is not this agent's to know of.
    if locked[from_at].agent_id != agent {
        return Err(PostingError::HoldNotFound(cmd.hold_id));
    }
    let hold = read_hold(&txn, cmd.hold_id, sql::LOCK_TRANSACTION).await?;
    // A first attempt with this key that committed while this one waited for the locks is
    // invisible to the snapshot the locking statement took; this later statement sees it,
    // and its answer is the capture it made (not "already captured").
    if shared::key_used(&txn, agent, &cmd.idempotency).await? {
        return shared::answer_replay(txn, agent, Some(&cmd.idempotency), &locked).await;
    }
    match hold.status_at(cmd.now) {
        TransactionStatus::Held => {}
        TransactionStatus::Expired => return Err(PostingError::HoldExpired),
        status => {
            return Err(PostingError::HoldNotOpen {
                status,
                action: "captured",
            });
        }
    }
    if !locked[from_at].agent_active {
        return Err(PostingError::AgentNotActive);
    }
    let amount = cmd.amount.unwrap_or(hold.amount);
    if amount > hold.amount {
        return Err(PostingError::CaptureExceedsHold {
            held: hold.amount,
            asked: amount,
        });
    }
    let to_id = hold.to_wallet_id.map(|w| *w.as_uuid());
    if let (Some(w), Some(id)) = (hold.to_wallet_id, to_id) {
        let to = locked
            .iter()
            .find(|l| l.id == id)
            .context("the hold's receiving wallet exists")?;
        if to.closed {
            return Err(PostingError::WalletClosed(w));
        }
        to.balance
            .checked_add(amount)
            .map_err(|_| PostingError::BalanceOverflow)?;
    }
    let destination = hold.destination.as_ref().map(|d| d.as_str().to_owned());
    let kind = if to_id.is_some() {
        TransactionKind::Transfer
    } else {
        TransactionKind::Payment
    };
    let inserted = shared::insert_transaction(
        &txn,
        NewTransaction {
            id: *cmd.transaction_id.as_uuid(),
            kind,
            status: TransactionStatus::Completed,
            asset: hold.asset.as_str(),
            amount,
            from_wallet: Some(from_id),
            to_wallet: to_id,
            destination: destination.as_deref(),
            memo: hold.memo.as_ref().map(|m| m.as_str()),
            metadata: &hold.metadata,
            owner_id: locked[from_at].owner_id,
            initiator: Actor::Agent(cmd.agent_id),
            idempotency: Some(&cmd.idempotency),
            rule: None,
            reason: None,
            budget: Budget::default(),
            now: cmd.now,
            expires_at: None,
            hold_id: Some(*hold.id.as_uuid()),
            level: None,
            approval_deadline: None,
            mandate_id: None,
        },
    )
    .await?;
    let Some(transaction) = inserted else {
        return shared::answer_replay(txn, agent, Some(&cmd.idempotency), &locked).await;
    };
    // The hold ends first (its amount leaves `held`, what is not captured goes back to the
    // day it was held); the ledger write then moves the captured amount and bumps the
    // version once.
    let ended = release(
        &txn,
        hold.id,
        TransactionStatus::Captured,
        amount.minor_units(),
        false,
        &mut locked[from_at],
        cmd.now,
    )
    .await?;
    let minor = amount.minor_units();
    let entries = match (to_id, destination.as_deref()) {
        (Some(to), _) => [Entry::wallet(from_id, -minor), Entry::wallet(to, minor)],
        (None, dest) => [
            Entry::wallet(from_id, -minor),
            Entry::external(dest.unwrap_or_default(), minor),
        ],
    };
    let owner = OwnerId::from_uuid(locked[from_at].owner_id);
    let movement = Movement {
        transaction_id: *transaction.id.as_uuid(),
        asset: hold.asset.as_str(),
        now: cmd.now,
        entries: &entries,
        locked: &locked,
        // The hold already counted in the budgets when it was placed.
        spend: None,
    };
    let balances = shared::post_writes(&txn, &movement, &cmd.audit, |balances| NewAuditEntry {
        owner_id: Some(owner),
        action: "hold.capture",
        resource_type: "hold",
        resource_id: hold.id.to_string(),
        old_value: Some(serde_json::json!({ "status": hold.status })),
        new_value: Some(serde_json::json!({
            "hold": &ended, "transaction": &transaction, "balances": balances
        })),
    })
    .await?;
    let v = shared::notify(
        &txn,
        *owner.as_uuid(),
        NotificationKind::HoldCaptured,
        from_id,
        &ended,
        cmd.now,
    )
    .await?;
    commit(txn, "committing the capture").await?;
    Ok(PostingOutcome {
        transaction,
        replayed: false,
        balances,
        notified: Some((owner, v)),
    })
}

pub(super) async fn void(
    db: &DatabaseConnection,
    cmd: &VoidCommand,
) -> Result<PostingOutcome, PostingError> {
    let principal = match cmd.principal {
        Principal::Owner { owner_id } => *owner_id.as_uuid(),
        Principal::Agent { agent_id, .. } => *agent_id.as_uuid(),
    };
    let txn = db.start().await.doing("beginning a void")?;
    let peek = read_hold(&txn, cmd.hold_id, sql::FIND_TRANSACTION).await?;
    let from_id = *peek
        .from_wallet_id
        .context("a hold has a paying wallet")?
        .as_uuid();
    // Only the paying wallet changes: the receiving one is not locked.
    let mut locked = shared::lock_wallets(&txn, &[from_id], principal, None, cmd.now)
        .await?
        .wallets;
    let wallet = locked.first_mut().context("the hold's wallet exists")?;
    let visible = match cmd.principal {
        Principal::Owner { .. } => wallet.owner_id == principal,
        Principal::Agent { .. } => wallet.agent_id == principal,
    };
    if !visible {
        return Err(PostingError::HoldNotFound(cmd.hold_id));
    }
    let hold = read_hold(&txn, cmd.hold_id, sql::LOCK_TRANSACTION).await?;
    let (ended, balances, kind) = match hold.status {
        TransactionStatus::Voided | TransactionStatus::Expired => {
            // Already released: the answer is the hold as it is.
            let balances = vec![wallet.snapshot()?];
            txn.rollback().await.doing("ending a repeated void")?;
            return Ok(PostingOutcome {
                transaction: hold,
                replayed: true,
                balances,
                notified: None,
            });
        }
        TransactionStatus::Held => {
            let (status, kind) = if hold.status_at(cmd.now) == TransactionStatus::Expired {
                (TransactionStatus::Expired, NotificationKind::HoldExpired)
            } else {
                (TransactionStatus::Voided, NotificationKind::HoldVoided)
            };
            let ended = release(&txn, hold.id, status, 0, true, wallet, cmd.now).await?;
            (ended, vec![wallet.snapshot()?], kind)
        }
        TransactionStatus::PendingApproval => {
            let row = txn
                .query_one_raw(stmt(
                    sql::VOID_PENDING_HOLD,
                    vec![(*hold.id.as_uuid()).into(), cmd.now.into()],
                ))
                .await
                .doing("voiding the pending hold")?
                .context("the locked hold is pending")?;
            let model =
                transactions::Model::from_query_result(&row, "").context("decoding the hold")?;
            let ended = Transaction::try_from(model)?;
            (ended, Vec::new(), NotificationKind::HoldVoided)
        }
        status => {
            return Err(PostingError::HoldNotOpen {
                status,
                action: "voided",
            });
        }
    };
    let v = shared::ended(&txn, wallet, &ended, kind, &cmd.audit, cmd.now).await?;
    let owner = OwnerId::from_uuid(wallet.owner_id);
    commit(txn, "committing the void").await?;
    Ok(PostingOutcome {
        transaction: ended,
        replayed: false,
        balances,
        notified: Some((owner, v)),
    })
}

/// The rows a sweep is due to end: `sql` with the time and the limit.
async fn due(
    db: &DatabaseConnection,
    sql: &str,
    now: DateTime<Utc>,
    limit: u32,
    what: &'static str,
) -> Result<Vec<sea_orm::QueryResult>, RepoError> {
    db.query_all_raw(stmt(sql, vec![now.into(), i64::from(limit).into()]))
        .await
        .repo(what)
}

/// Runs a sweep over what `found` says is due: each item ended by `end` in a PostgreSQL
/// transaction of its own, retried by [`Postgres::run`] on its own, so a retry never repeats
/// or loses what an earlier item committed. An item whose wallet stays locked past the lock
/// timeout is skipped (the next run tries it again); any other failure ends the run. Every
/// item committed before a failure is returned with it: its cache entries must still be
/// written through and its events published.
async fn sweep<I, F, Fut>(pg: &Postgres, found: Result<Vec<I>, RepoError>, end: F) -> Ended
where
    I: Copy,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<Vec<PostingOutcome>, RepoError>>,
{
    let mut ended = Ended::default();
    let items = match found {
        Ok(items) => items,
        Err(e) => {
            ended.failed = Some(e);
            return ended;
        }
    };
    for item in items {
        match pg.run(Work::Write, || end(item)).await {
            Ok(outcomes) => ended.outcomes.extend(outcomes),
            Err(e) => {
                let busy = waiaas_domain::Fault::of(&e.0) == Some(waiaas_domain::Fault::WalletBusy);
                ended.failed.get_or_insert(e);
                if !busy {
                    break;
                }
            }
        }
    }
    ended
}

/// Releases the expired holds of up to `limit` wallets, one wallet per PostgreSQL
/// transaction. A wallet another instance is releasing is waited for, then found with
/// nothing left to release: no hold is released twice.
pub(super) async fn expire(pg: &Postgres, now: DateTime<Utc>, limit: u32) -> Ended {
    let find = || async {
        let rows = due(
            &pg.db,
            sql::EXPIRED_HOLD_WALLETS,
            now,
            limit,
            "finding expired holds",
        )
        .await?;
        rows.iter()
            .map(|row| row.try_get::<Uuid>("", "from_wallet_id"))
            .collect::<Result<Vec<_>, _>>()
            .repo("decoding a wallet id")
    };
    let found = pg.run(Work::Read, find).await;
    sweep(pg, found, |wallet| release_wallet(&pg.db, wallet, now)).await
}

/// Releases every expired hold of `wallet`, in one PostgreSQL transaction.
async fn release_wallet(
    db: &DatabaseConnection,
    wallet: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<PostingOutcome>, RepoError> {
    let ctx = AuditContext::system();
    let txn = db.start().await.repo("beginning a release")?;
    let mut locked = shared::lock_wallets(&txn, &[wallet], Uuid::nil(), None, now)
        .await
        .map_err(RepoError)?
        .wallets;
    let Some(w) = locked.first_mut() else {
        return Ok(Vec::new());
    };
    let released = shared::release_expired(&txn, w, now, &ctx)
        .await
        .map_err(RepoError)?;
    let balance = w.snapshot().map_err(RepoError)?;
    commit(txn, "committing a release")
        .await
        .map_err(RepoError)?;
    let count = released.holds.len();
    let mut outcomes = Vec::with_capacity(count);
    for (i, hold) in released.holds.into_iter().enumerate() {
        // The last one carries the wallet's balance and the owner's newest version.
        let last = i + 1 == count;
        outcomes.push(PostingOutcome {
            transaction: hold,
            replayed: false,
            balances: if last {
                vec![balance.clone()]
            } else {
                Vec::new()
            },
            notified: if last { released.notified } else { None },
        });
    }
    Ok(outcomes)
}

/// Expires up to `limit` transactions that waited for approval past their deadline, one per
/// PostgreSQL transaction: its paying wallet locked first, then its row, as everywhere.
pub(super) async fn expire_approvals(pg: &Postgres, now: DateTime<Utc>, limit: u32) -> Ended {
    let find = || async {
        let rows = due(
            &pg.db,
            sql::EXPIRED_APPROVALS,
            now,
            limit,
            "finding expired approvals",
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<Uuid>("", "id")?,
                    row.try_get::<Uuid>("", "from_wallet_id")?,
                ))
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()
            .repo("decoding an expired approval")
    };
    let found = pg.run(Work::Read, find).await;
    sweep(pg, found, |(id, wallet)| {
        expire_approval(&pg.db, id, wallet, now)
    })
    .await
}

/// Expires transaction `id` of `wallet`, if it still waits for approval.
async fn expire_approval(
    db: &DatabaseConnection,
    id: Uuid,
    wallet: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<PostingOutcome>, RepoError> {
    let ctx = AuditContext::system();
    let txn = db.start().await.repo("beginning an expiry")?;
    let locked = shared::lock_wallets(&txn, &[wallet], Uuid::nil(), None, now)
        .await
        .map_err(RepoError)?
        .wallets;
    let Some(w) = locked.first() else {
        return Ok(Vec::new());
    };
    txn.execute_raw(stmt(sql::LOCK_TRANSACTION, vec![id.into()]))
        .await
        .repo("locking the transaction")?;
    let Some(row) = txn
        .query_one_raw(stmt(sql::EXPIRE_APPROVAL, vec![id.into(), now.into()]))
        .await
        .repo("expiring the transaction")?
    else {
        // Decided (or expired by another instance) meanwhile.
        return Ok(Vec::new());
    };
    let model = transactions::Model::from_query_result(&row, "").repo("decoding")?;
    let expired = Transaction::try_from(model).map_err(RepoError)?;
    let owner = OwnerId::from_uuid(w.owner_id);
    crate::audit::record(
        &txn,
        &ctx,
        NewAuditEntry {
            owner_id: Some(owner),
            action: "transaction.expire",
            resource_type: "transaction",
            resource_id: id.to_string(),
            old_value: Some(serde_json::json!({ "status": "pending_approval" })),
            new_value: Some(serde_json::json!({ "transaction": &expired })),
        },
        now,
    )
    .await
    .repo("auditing the expiry")?;
    let version = shared::notify(
        &txn,
        w.owner_id,
        NotificationKind::ApprovalExpired,
        wallet,
        &expired,
        now,
    )
    .await
    .map_err(RepoError)?;
    commit(txn, "committing an expiry")
        .await
        .map_err(RepoError)?;
    Ok(vec![PostingOutcome {
        transaction: expired,
        replayed: false,
        balances: Vec::new(),
        notified: Some((owner, version)),
    }])
}
