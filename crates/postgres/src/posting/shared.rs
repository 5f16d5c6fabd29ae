//! Steps shared by every posting: locking wallets, reading policy and usage, inserting the
//! transaction row, writing ledger entries and balances, and replaying idempotent requests.

use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Datelike as _, Duration, Utc};
use sea_orm::sea_query::{ArrayType, Value};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, FromQueryResult, Statement};
use uuid::Uuid;
use waiaas_domain::model::{
    Actor, AgentStatus, Budget, TransactionKind, TransactionStatus, WalletBalance,
};
use waiaas_domain::notifications::NotificationKind;
use waiaas_domain::policy::{
    BudgetLimits, Level, LevelState, LevelUsage, Levels, PolicyRules, Usage,
};
use waiaas_domain::ports::{Idempotency, PostingOutcome};
use waiaas_domain::{Decision, Money, PostingError, Rule, Transaction};

use super::sql;
use crate::convert;
use crate::entity::transactions;
use crate::error::DbContext as _;

/// A wallet row as locked for a posting.
#[derive(Debug, Clone)]
pub(super) struct LockedWallet {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub owner_id: Uuid,
    pub asset: String,
    pub balance: Money,
    /// The part of the balance open holds reserve.
    pub held: Money,
    pub version: i64,
    /// Holds of the wallet are past their expiry and not yet released.
    pub expired_held: bool,
    /// Its agent may move money.
    pub agent_active: bool,
    /// Its agent was deleted: the wallet takes no more money in.
    pub closed: bool,
}

impl LockedWallet {
    /// The balance as locked, for write-through.
    pub(super) fn snapshot(&self) -> anyhow::Result<WalletBalance> {
        convert::balance(
            self.id,
            &self.asset,
            self.balance.minor_units(),
            self.held.minor_units(),
            self.version,
        )
    }

    /// What the wallet can spend: its balance less what open holds reserve.
    pub(super) const fn available(&self) -> Money {
        self.balance.saturating_sub(self.held)
    }
}

/// The wallets a posting locked, and the transaction its idempotency key already produced.
#[derive(Debug)]
pub(super) struct Locked {
    pub wallets: Vec<LockedWallet>,
    pub prior: Option<Uuid>,
}

pub(super) fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

pub(super) fn uuid_array(ids: impl IntoIterator<Item = Uuid>) -> Value {
    let items: Vec<Value> = ids.into_iter().map(|id| Value::Uuid(Some(id))).collect();
    Value::Array(ArrayType::Uuid, Some(Box::new(items)))
}

/// Locks the wallets in ascending id order and reads them (missing ones are simply absent),
/// with the transaction `key` of `principal` already produced, if any. Wallets are always
/// locked before any transaction row (a hold, a pending transaction): one global order, so
/// postings, captures, voids, decisions and the expiry sweeper cannot deadlock.
pub(super) async fn lock_wallets(
    txn: &DatabaseTransaction,
    ids: &[Uuid],
    principal: Uuid,
    key: Option<&Idempotency>,
    now: DateTime<Utc>,
) -> anyhow::Result<Locked> {
    let rows = txn
        .query_all_raw(stmt(
            sql::LOCK_WALLETS,
            vec![
                uuid_array(ids.iter().copied()),
                principal.into(),
                key.map(|k| k.key.as_str().to_owned()).into(),
                now.into(),
            ],
        ))
        .await
        .doing("locking wallets")?;
    let mut prior = None;
    let wallets = rows
        .iter()
        .map(|r| {
            let status: String = r.try_get("", "agent_status")?;
            prior = prior.or(r.try_get::<Option<Uuid>>("", "prior_id")?);
            Ok(LockedWallet {
                id: r.try_get("", "id")?,
                agent_id: r.try_get("", "agent_id")?,
                owner_id: r.try_get("", "owner_id")?,
                asset: r.try_get("", "asset")?,
                balance: convert::money(r.try_get("", "balance")?, "balance")?,
                held: convert::money(r.try_get("", "held")?, "held")?,
                version: r.try_get("", "version")?,
                expired_held: r.try_get("", "expired_held")?,
                agent_active: status == AgentStatus::Active.as_str(),
                closed: status == AgentStatus::Revoked.as_str(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Locked { wallets, prior })
}

/// What a spend of a wallet is decided under: the wallet's rules and spend, and the budgets
/// above it with the spend under them.
#[derive(Debug)]
pub(super) struct Limits {
    pub rules: PolicyRules,
    pub usage: Usage,
    pub agent: Option<(BudgetLimits, LevelUsage)>,
    pub owner: Option<(BudgetLimits, LevelUsage)>,
}

impl Limits {
    /// The budgets above the wallet, for the policy engine.
    pub(super) fn levels(&self) -> Levels<'_> {
        fn state(l: &(BudgetLimits, LevelUsage)) -> LevelState<'_> {
            LevelState {
                limits: &l.0,
                usage: l.1,
            }
        }
        Levels {
            agent: self.agent.as_ref().map(state),
            owner: self.owner.as_ref().map(state),
        }
    }
}

/// Locks the budgets above the paying wallet (the agent's, then the owner's) and reads
/// everything a spend is decided under: the wallet's rules, its spend today and this month
/// (and the rolling hour's count when that rule is set), and the spend under each budget.
/// Must run under the wallet's lock.
pub(super) async fn limits(
    txn: &DatabaseTransaction,
    wallet: &LockedWallet,
    now: DateTime<Utc>,
) -> anyhow::Result<Limits> {
    let budgets = txn
        .query_all_raw(stmt(
            sql::LOCK_BUDGETS,
            vec![
                wallet.agent_id.into(),
                wallet.owner_id.into(),
                wallet.asset.clone().into(),
            ],
        ))
        .await
        .doing("locking the budgets")?;
    let mut agent = None;
    let mut owner = None;
    for row in &budgets {
        let level: String = row.try_get("", "level")?;
        let get = |c: &str| -> anyhow::Result<Option<Money>> {
            row.try_get::<Option<i64>>("", c)?
                .map(|v| convert::money(v, "budget limit"))
                .transpose()
        };
        let limits = BudgetLimits {
            max_per_transaction: get("max_per_transaction")?,
            daily_limit: get("daily_limit")?,
            monthly_limit: get("monthly_limit")?,
        };
        if level == "agent" {
            agent = Some(limits);
        } else {
            owner = Some(limits);
        }
    }
    let day = now.date_naive();
    let month = day.with_day(1).unwrap_or(day);
    let row = txn
        .query_one_raw(stmt(
            sql::POLICY_AND_SPEND,
            vec![
                wallet.id.into(),
                day.into(),
                month.into(),
                agent.map(|_| wallet.agent_id).into(),
                owner.map(|_| wallet.owner_id).into(),
                wallet.asset.clone().into(),
            ],
        ))
        .await
        .doing("reading policy and spend")?
        .ok_or_else(|| anyhow!("policy and spend query returned no row"))?;
    let rules: PolicyRules = match row.try_get::<Option<serde_json::Value>>("", "rules")? {
        Some(json) => serde_json::from_value(json).context("stored policy rules are invalid")?,
        None => PolicyRules::default(),
    };
    let sum = |c: &str| -> anyhow::Result<Money> {
        convert::money(row.try_get::<Option<i64>>("", c)?.unwrap_or(0), "spend")
    };
    let count: Option<i32> = row.try_get("", "count_today")?;
    let mut usage = Usage {
        spent_today: sum("spent_today")?,
        count_today: u32::try_from(count.unwrap_or(0)).unwrap_or(0),
        count_last_hour: 0,
        spent_month: sum("spent_month")?,
    };
    let agent = match agent {
        Some(l) => Some((
            l,
            LevelUsage {
                spent_today: sum("agent_today")?,
                spent_month: sum("agent_month")?,
            },
        )),
        None => None,
    };
    let owner = match owner {
        Some(l) => Some((
            l,
            LevelUsage {
                spent_today: sum("owner_today")?,
                spent_month: sum("owner_month")?,
            },
        )),
        None => None,
    };
    if rules.needs_hourly_count() {
        let since = now - Duration::hours(1);
        let row = txn
            .query_one_raw(stmt(
                sql::HOURLY_COUNT,
                vec![wallet.id.into(), since.into()],
            ))
            .await
            .doing("counting the rolling hour")?
            .ok_or_else(|| anyhow!("hourly count returned no row"))?;
        let n: i64 = row.try_get("", "n")?;
        usage.count_last_hour = u32::try_from(n).unwrap_or(u32::MAX);
    }
    Ok(Limits {
        rules,
        usage,
        agent,
        owner,
    })
}

/// What a decision is recorded with.
#[derive(Debug, Clone)]
pub(super) struct Recorded {
    pub status: TransactionStatus,
    pub rule: Option<Rule>,
    pub reason: Option<String>,
    pub budget: Budget,
    pub level: Option<Level>,
}

/// The status, rule, reason, budget and level a decision is recorded with.
pub(super) fn recorded(decision: &Decision) -> Recorded {
    let level = match decision {
        Decision::Deny { level, .. } => Some(*level),
        _ => None,
    };
    let (status, rule, reason, budget) = recorded_parts(decision);
    Recorded {
        status,
        rule,
        reason,
        budget,
        level,
    }
}

fn recorded_parts(
    decision: &Decision,
) -> (TransactionStatus, Option<Rule>, Option<String>, Budget) {
    match decision {
        Decision::Allow { budget } => (TransactionStatus::Completed, None, None, *budget),
        Decision::NeedsApproval { rule, budget } => (
            TransactionStatus::PendingApproval,
            Some(*rule),
            Some(format!("waiting for the owner's approval ({rule})")),
            *budget,
        ),
        Decision::Deny {
            rule,
            reason,
            budget,
            ..
        } => (
            TransactionStatus::Denied,
            Some(*rule),
            Some(reason.clone()),
            *budget,
        ),
        Decision::InsufficientFunds { balance, amount } => (
            TransactionStatus::Failed,
            None,
            Some(format!(
                "insufficient funds: balance {balance}, amount {amount}"
            )),
            Budget::default(),
        ),
    }
}

/// How a decided spend (a transfer, payment or hold) is recorded.
#[derive(Debug, Clone)]
pub(super) struct SpendRecord {
    /// The decision's status (`held` instead of `completed` for a hold), rule, reason,
    /// budget and level.
    pub recorded: Recorded,
    /// A hold, a transfer (to a wallet) or a payment.
    pub kind: TransactionKind,
    /// When it stops waiting for the owner's approval, if it waits.
    pub approval_deadline: Option<DateTime<Utc>>,
}

/// How a spend decided at `now` is recorded: `hold` for a hold, `to_wallet` for a transfer,
/// `approval_timeout_s` from the wallet's rules.
pub(super) fn spend_record(
    decision: &Decision,
    hold: bool,
    to_wallet: bool,
    approval_timeout_s: Option<u32>,
    now: DateTime<Utc>,
) -> SpendRecord {
    let mut recorded = recorded(decision);
    if hold && recorded.status == TransactionStatus::Completed {
        recorded.status = TransactionStatus::Held;
    }
    let approval_deadline = (recorded.status == TransactionStatus::PendingApproval)
        .then_some(approval_timeout_s)
        .flatten()
        .map(|s| now + Duration::seconds(i64::from(s)));
    let kind = if hold {
        TransactionKind::Hold
    } else if to_wallet {
        TransactionKind::Transfer
    } else {
        TransactionKind::Payment
    };
    SpendRecord {
        recorded,
        kind,
        approval_deadline,
    }
}

/// A transaction row to insert.
#[derive(Debug)]
pub(super) struct NewTransaction<'a> {
    pub id: Uuid,
    pub kind: TransactionKind,
    pub status: TransactionStatus,
    pub asset: &'a str,
    pub amount: Money,
    pub from_wallet: Option<Uuid>,
    pub to_wallet: Option<Uuid>,
    pub destination: Option<&'a str>,
    pub memo: Option<&'a str>,
    pub metadata: &'a serde_json::Value,
    pub owner_id: Uuid,
    pub initiator: Actor,
    pub idempotency: Option<&'a Idempotency>,
    pub rule: Option<Rule>,
    pub reason: Option<String>,
    pub budget: Budget,
    pub now: DateTime<Utc>,
    /// A hold's expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// A capture's hold.
    pub hold_id: Option<Uuid>,
    /// The level whose rule denied it.
    pub level: Option<Level>,
    /// When it stops waiting for approval.
    pub approval_deadline: Option<DateTime<Utc>>,
    /// The mandate that pre-approved it.
    pub mandate_id: Option<Uuid>,
}

impl NewTransaction<'_> {
    /// The row as a JSON object keyed by column name (the batch inserts many at once with
    /// `jsonb_populate_recordset`); the same values [`insert_transaction`] binds.
    pub(super) fn to_json(&self) -> anyhow::Result<serde_json::Value> {
        let posted_at = (self.status == TransactionStatus::Completed).then_some(self.now);
        let held_at = (self.status == TransactionStatus::Held).then_some(self.now);
        Ok(serde_json::json!({
            "id": self.id,
            "kind": self.kind.as_str(),
            "status": self.status.as_str(),
            "asset": self.asset,
            "amount": self.amount.minor_units(),
            "from_wallet_id": self.from_wallet,
            "to_wallet_id": self.to_wallet,
            "destination": self.destination,
            "memo": self.memo,
            "metadata": self.metadata,
            "owner_id": self.owner_id,
            "initiator_type": self.initiator.kind(),
            "initiator_id": self.initiator.id(),
            "idempotency_key": self.idempotency.map(|i| i.key.as_str()),
            "request_hash": self.idempotency.map(|i| i.request_hash.as_str()),
            "decision_rule": self.rule.map(|r| r.as_str()),
            "reason": self.reason,
            "budget_daily_remaining": self.budget.daily_remaining.map(Money::minor_units),
            "budget_hourly_remaining": self
                .budget
                .hourly_remaining
                .map(|h| i32::try_from(h).unwrap_or(i32::MAX)),
            "created_at": self.now,
            "updated_at": self.now,
            "posted_at": posted_at,
            "expires_at": self.expires_at,
            "held_at": held_at,
            "hold_id": self.hold_id,
            "budget": serde_json::to_value(self.budget)?,
            "decision_level": self.level.map(|l| l.as_str()),
            "approval_deadline": self.approval_deadline,
            "mandate_id": self.mandate_id,
        }))
    }
}

/// Inserts the transaction; `None` when its idempotency key was already used.
pub(super) async fn insert_transaction(
    txn: &DatabaseTransaction,
    t: NewTransaction<'_>,
) -> anyhow::Result<Option<Transaction>> {
    let posted_at = (t.status == TransactionStatus::Completed).then_some(t.now);
    let held_at = (t.status == TransactionStatus::Held).then_some(t.now);
    let values: Vec<Value> = vec![
        t.id.into(),
        t.kind.as_str().into(),
        t.status.as_str().into(),
        t.asset.into(),
        t.amount.minor_units().into(),
        t.from_wallet.into(),
        t.to_wallet.into(),
        t.destination.map(str::to_owned).into(),
        t.memo.map(str::to_owned).into(),
        t.metadata.clone().into(),
        t.owner_id.into(),
        t.initiator.kind().into(),
        t.initiator.id().into(),
        t.idempotency.map(|i| i.key.as_str().to_owned()).into(),
        t.idempotency.map(|i| i.request_hash.clone()).into(),
        t.rule.map(|r| r.as_str().to_owned()).into(),
        t.reason.into(),
        t.budget.daily_remaining.map(Money::minor_units).into(),
        t.budget
            .hourly_remaining
            .map(|h| i32::try_from(h).unwrap_or(i32::MAX))
            .into(),
        t.now.into(),
        t.now.into(),
        posted_at.into(),
        t.expires_at.into(),
        held_at.into(),
        t.hold_id.into(),
        serde_json::to_value(t.budget)?.into(),
        t.level.map(|l| l.as_str().to_owned()).into(),
        t.approval_deadline.into(),
        t.mandate_id.into(),
    ];
    let row = txn
        .query_one_raw(stmt(sql::INSERT_TRANSACTION, values))
        .await
        .doing("inserting the transaction")?;
    row.map(|r| {
        let model = transactions::Model::from_query_result(&r, "")?;
        Transaction::try_from(model)
    })
    .transpose()
}

/// One side of a posting: a wallet, or an account of the outside world.
#[derive(Debug)]
pub(super) struct Entry {
    pub wallet: Option<Uuid>,
    pub account: String,
    pub amount: i64,
}

impl Entry {
    pub(super) fn wallet(id: Uuid, amount: i64) -> Self {
        Self {
            wallet: Some(id),
            account: format!("wallet:{id}"),
            amount,
        }
    }

    /// Money paid out to a destination outside the platform.
    pub(super) fn external(destination: &str, amount: i64) -> Self {
        Self {
            wallet: None,
            account: format!("external:{destination}"),
            amount,
        }
    }

    /// One of the platform's own accounts (`system:deposits`): a namespace no destination
    /// can reach, since destinations are always prefixed `external:`.
    pub(super) fn system(account: &str, amount: i64) -> Self {
        Self {
            wallet: None,
            account: format!("system:{account}"),
            amount,
        }
    }
}

/// What a posted transaction writes besides its own row.
#[derive(Debug)]
pub(super) struct Movement<'a> {
    /// The transaction.
    pub transaction_id: Uuid,
    /// Its asset.
    pub asset: &'a str,
    /// The time of the posting.
    pub now: DateTime<Utc>,
    /// Its ledger entries (they sum to zero).
    pub entries: &'a [Entry],
    /// The wallets as locked by this posting.
    pub locked: &'a [LockedWallet],
    /// The paying wallet and the amount it spends today, if any.
    pub spend: Option<(Uuid, Money)>,
}

/// Writes a posted transaction's ledger entries, daily spend, audit row and new balances in
/// one statement (`sql::POST_WRITES`). The audit row describes the balances this posting
/// computes from the locked rows; the statement's result must agree with them.
pub(super) async fn post_writes(
    txn: &DatabaseTransaction,
    m: &Movement<'_>,
    ctx: &waiaas_domain::AuditContext,
    audit: impl FnOnce(&[WalletBalance]) -> waiaas_domain::NewAuditEntry,
) -> anyhow::Result<Vec<WalletBalance>> {
    anyhow::ensure!(
        m.entries.iter().map(|e| i128::from(e.amount)).sum::<i128>() == 0,
        "ledger entries of {} do not sum to zero",
        m.transaction_id
    );
    let moved: Vec<&Entry> = m.entries.iter().filter(|e| e.wallet.is_some()).collect();
    let mut expected = Vec::with_capacity(moved.len());
    for e in &moved {
        let w = m
            .locked
            .iter()
            .find(|l| Some(l.id) == e.wallet)
            .ok_or_else(|| anyhow!("wallet of an entry was not locked"))?;
        let balance = w
            .balance
            .minor_units()
            .checked_add(e.amount)
            .ok_or_else(|| anyhow!("balance overflow"))?;
        expected.push(convert::balance(
            w.id,
            &w.asset,
            balance,
            w.held.minor_units(),
            w.version + 1,
        )?);
    }
    let entry = audit(&expected);
    let (spend_wallet, spend) = m
        .spend
        .map_or((None, 0), |(w, a)| (Some(w), a.minor_units()));
    let mut values: Vec<Value> = vec![
        m.transaction_id.into(),
        m.asset.into(),
        m.now.into(),
        m.entries
            .iter()
            .map(|e| e.wallet.map(|w| w.to_string()).unwrap_or_default())
            .collect::<Vec<_>>()
            .into(),
        m.entries
            .iter()
            .map(|e| e.account.clone())
            .collect::<Vec<_>>()
            .into(),
        m.entries
            .iter()
            .map(|e| e.amount)
            .collect::<Vec<_>>()
            .into(),
        uuid_array(moved.iter().filter_map(|e| e.wallet)),
        moved.iter().map(|e| e.amount).collect::<Vec<_>>().into(),
        spend_wallet.into(),
        m.now.date_naive().into(),
        spend.into(),
    ];
    values.extend(crate::audit::row_values(ctx, entry));
    let rows = txn
        .query_all_raw(stmt(sql::POST_WRITES, values))
        .await
        .doing("writing the posting")?;
    let mut written = rows
        .iter()
        .map(|r| {
            convert::balance(
                r.try_get("", "id")?,
                &r.try_get::<String>("", "asset")?,
                r.try_get("", "balance")?,
                r.try_get("", "held")?,
                r.try_get("", "version")?,
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    written.sort_by_key(|b| b.wallet_id);
    let mut sorted = expected.clone();
    sorted.sort_by_key(|b| b.wallet_id);
    anyhow::ensure!(
        written == sorted,
        "balances written {written:?} differ from the locked rows' {sorted:?}"
    );
    Ok(expected)
}

/// Tells an owner about a held or denied transaction, in the posting's transaction; returns
/// the new version of the owner's notifications.
pub(super) async fn notify(
    txn: &DatabaseTransaction,
    owner: Uuid,
    kind: NotificationKind,
    wallet: Uuid,
    tx: &Transaction,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let message = match kind {
        NotificationKind::ApprovalRequested => format!(
            "A {} of {} {} from wallet {wallet} waits for your approval",
            tx.kind.as_str(),
            tx.amount,
            tx.asset
        ),
        NotificationKind::TransferDenied => format!(
            "A {} of {} {} from wallet {wallet} was denied: {}",
            tx.kind.as_str(),
            tx.amount,
            tx.asset,
            tx.reason.as_deref().unwrap_or("policy")
        ),
        NotificationKind::HoldPlaced => format!(
            "A hold of {} {} was placed on wallet {wallet}, until {}",
            tx.amount,
            tx.asset,
            tx.hold
                .expires_at
                .map_or_else(String::new, |t| t.to_rfc3339())
        ),
        NotificationKind::HoldCaptured => format!(
            "A hold of {} {} on wallet {wallet} was captured for {}",
            tx.amount,
            tx.asset,
            tx.hold.captured.unwrap_or(Money::ZERO)
        ),
        NotificationKind::HoldVoided => format!(
            "A hold of {} {} on wallet {wallet} was voided: its amount is released",
            tx.amount, tx.asset
        ),
        NotificationKind::HoldExpired => format!(
            "A hold of {} {} on wallet {wallet} expired uncaptured: its amount is released",
            tx.amount, tx.asset
        ),
        NotificationKind::WebhookFailed => format!(
            "An event about a {} of {} {} from wallet {wallet} could not be delivered to a webhook",
            tx.kind.as_str(),
            tx.amount,
            tx.asset
        ),
        NotificationKind::ApprovalExpired => format!(
            "A {} of {} {} from wallet {wallet} waited too long for your approval and expired; nothing moved",
            tx.kind.as_str(),
            tx.amount,
            tx.asset
        ),
    };
    let row = txn
        .query_one_raw(stmt(
            sql::INSERT_NOTIFICATION,
            vec![
                Uuid::now_v7().into(),
                owner.into(),
                kind.as_str().into(),
                wallet.into(),
                (*tx.id.as_uuid()).into(),
                message.into(),
                now.into(),
            ],
        ))
        .await
        .doing("notifying the owner")?
        .ok_or_else(|| anyhow!("notification insert returned no row"))?;
    Ok(row.try_get("", "version")?)
}

/// Answers a repeated request with the transaction its idempotency key produced, or a
/// conflict when the key was first used for a different request. `locked` are the current
/// balances of the wallets involved, written through to caches by the caller.
pub(super) async fn replay<C: ConnectionTrait>(
    conn: &C,
    initiator: Uuid,
    idempotency: &Idempotency,
    locked: &[LockedWallet],
) -> Result<PostingOutcome, PostingError> {
    let row = conn
        .query_one_raw(stmt(
            sql::FIND_BY_IDEMPOTENCY_KEY,
            vec![initiator.into(), idempotency.key.as_str().into()],
        ))
        .await
        .doing("reading the idempotent transaction")?
        .ok_or_else(|| anyhow!("idempotency key conflicted but no transaction holds it"))?;
    let model =
        transactions::Model::from_query_result(&row, "").context("decoding the transaction")?;
    if model.request_hash.as_deref() != Some(idempotency.request_hash.as_str()) {
        return Err(PostingError::IdempotencyConflict);
    }
    let transaction = Transaction::try_from(model)?;
    let touched = transaction.wallets();
    let balances = locked
        .iter()
        .filter(|w| touched.iter().any(|t| *t.as_uuid() == w.id))
        .map(LockedWallet::snapshot)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(PostingOutcome {
        transaction,
        replayed: true,
        balances,
        notified: None,
    })
}

/// Whether `principal` already used the key, as a new statement sees it (after the locks).
pub(super) async fn key_used(
    txn: &DatabaseTransaction,
    principal: Uuid,
    idempotency: &Idempotency,
) -> anyhow::Result<bool> {
    Ok(txn
        .query_one_raw(stmt(
            sql::FIND_BY_IDEMPOTENCY_KEY,
            vec![principal.into(), idempotency.key.as_str().into()],
        ))
        .await
        .doing("looking up the idempotency key")?
        .is_some())
}

/// Ends a posting whose idempotency key was used before: releases the locks (nothing of
/// this attempt is kept) and answers with the first result.
pub(super) async fn answer_replay(
    txn: DatabaseTransaction,
    initiator: Uuid,
    idempotency: Option<&Idempotency>,
    locked: &[LockedWallet],
) -> Result<PostingOutcome, PostingError> {
    let idempotency = idempotency.context("a replay without an idempotency key")?;
    let outcome = replay(&txn, initiator, idempotency, locked).await;
    txn.rollback()
        .await
        .doing("rolling back a repeated request")?;
    outcome
}

/// Holds a release ended, with the owner's newest notifications version and the wallet's
/// balance after it.
#[derive(Debug, Default)]
pub(super) struct Released {
    /// The holds, as they now stand.
    pub holds: Vec<Transaction>,
    /// The owner notified and the version of its notifications.
    pub notified: Option<(waiaas_domain::OwnerId, i64)>,
}

/// Releases every hold of a locked wallet that is past its expiry, with an audit row and a
/// notification for each, and updates `wallet` (its `held` and version) to match.
pub(super) async fn release_expired(
    txn: &DatabaseTransaction,
    wallet: &mut LockedWallet,
    now: DateTime<Utc>,
    ctx: &waiaas_domain::AuditContext,
) -> anyhow::Result<Released> {
    let rows = txn
        .query_all_raw(stmt(
            sql::RELEASE_EXPIRED,
            vec![wallet.id.into(), now.into()],
        ))
        .await
        .doing("releasing expired holds")?;
    let mut released = Released::default();
    for row in &rows {
        let hold = Transaction::try_from(transactions::Model::from_query_result(row, "")?)?;
        wallet.held = convert::money(row.try_get("", "wallet_held")?, "held")?;
        wallet.version = row.try_get("", "wallet_version")?;
        let version = ended(txn, wallet, &hold, NotificationKind::HoldExpired, ctx, now).await?;
        released.notified = Some((waiaas_domain::OwnerId::from_uuid(wallet.owner_id), version));
        released.holds.push(hold);
    }
    wallet.expired_held = false;
    Ok(released)
}

/// Audits and notifies the end of a hold (captured, voided, expired) or its placement;
/// returns the owner's notifications version.
pub(super) async fn ended(
    txn: &DatabaseTransaction,
    wallet: &LockedWallet,
    hold: &Transaction,
    kind: NotificationKind,
    ctx: &waiaas_domain::AuditContext,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let action = match kind {
        NotificationKind::HoldPlaced => "hold.place",
        NotificationKind::HoldCaptured => "hold.capture",
        NotificationKind::HoldVoided => "hold.void",
        _ => "hold.expire",
    };
    let balance = wallet.snapshot()?;
    crate::audit::record(
        txn,
        ctx,
        waiaas_domain::NewAuditEntry {
            owner_id: Some(waiaas_domain::OwnerId::from_uuid(wallet.owner_id)),
            action,
            resource_type: "hold",
            resource_id: hold.id.to_string(),
            old_value: None,
            new_value: Some(serde_json::json!({ "hold": hold, "balances": [balance] })),
        },
        now,
    )
    .await
    .doing("auditing the hold")?;
    notify(txn, wallet.owner_id, kind, wallet.id, hold, now).await
}

/// Reserves a hold's amount on its locked wallet (`held`, version, the day's spend), audits
/// and notifies it; returns the wallet's new balance and the owner's notifications version.
pub(super) async fn place_hold(
    txn: &DatabaseTransaction,
    wallet: &LockedWallet,
    hold: &Transaction,
    ctx: &waiaas_domain::AuditContext,
    now: DateTime<Utc>,
) -> anyhow::Result<(WalletBalance, i64)> {
    let row = txn
        .query_one_raw(stmt(
            sql::RESERVE_HOLD,
            vec![
                wallet.id.into(),
                now.date_naive().into(),
                hold.amount.minor_units().into(),
                now.into(),
            ],
        ))
        .await
        .doing("reserving the hold")?
        .context("the locked wallet exists")?;
    let mut wallet = wallet.clone();
    wallet.held = convert::money(row.try_get("", "held")?, "held")?;
    wallet.version = row.try_get("", "version")?;
    let version = ended(txn, &wallet, hold, NotificationKind::HoldPlaced, ctx, now).await?;
    Ok((wallet.snapshot()?, version))
}
