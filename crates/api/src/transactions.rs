//! Deposits, transfers, payments and the transactions they produce.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
#[cfg(feature = "domain")]
use waiaas_domain::{Budget, LevelBudget, Money, Transaction, TransactionPage};

/// `POST /v1/wallets/{id}/deposits`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DepositBody {
    /// Minor units, above zero.
    #[cfg_attr(feature = "openapi", schema(example = 10_000))]
    #[serde(deserialize_with = "crate::whole::i64")]
    pub amount: i64,
    /// A note, at most 500 characters.
    pub memo: Option<String>,
    /// A JSON object of at most 4 KiB.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<serde_json::Value>,
}

/// `POST /v1/wallets/{id}/sweep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SweepBody {
    /// The wallet credited with the whole balance: another wallet of the same owner and
    /// asset, not closed.
    pub to_wallet_id: Uuid,
}

/// `POST /v1/wallets/{id}/transfers`: give exactly one of `to_wallet_id` (a transfer to a
/// wallet of the same asset) and `destination` (a payment out of the platform).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// Minor units, above zero.
    #[cfg_attr(feature = "openapi", schema(example = 2_500))]
    #[serde(deserialize_with = "crate::whole::i64")]
    pub amount: i64,
    /// The receiving wallet.
    pub to_wallet_id: Option<Uuid>,
    /// The external destination, e.g. `iban:DE89370400440532013000`.
    pub destination: Option<String>,
    /// A note, at most 500 characters.
    pub memo: Option<String>,
    /// A JSON object of at most 4 KiB.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<serde_json::Value>,
    /// A mandate of the paying wallet that pre-approves it: it completes without waiting
    /// for approval if the mandate covers it (hard limits still apply); `422 mandate_*`
    /// if it does not.
    pub mandate_id: Option<Uuid>,
}

/// `POST /v1/wallets/{id}/holds`: what `POST /v1/wallets/{id}/transfers` takes, and the
/// hold's lifetime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// Minor units to reserve, above zero.
    #[cfg_attr(feature = "openapi", schema(example = 2_500))]
    #[serde(deserialize_with = "crate::whole::i64")]
    pub amount: i64,
    /// The wallet a capture pays.
    pub to_wallet_id: Option<Uuid>,
    /// The external destination a capture pays, e.g. `iban:DE89370400440532013000`.
    pub destination: Option<String>,
    /// A note, at most 500 characters (the capture carries it too).
    pub memo: Option<String>,
    /// A JSON object of at most 4 KiB (the capture carries it too).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<serde_json::Value>,
    /// A mandate of the wallet that pre-approves the hold (see transfers).
    pub mandate_id: Option<Uuid>,
    /// Seconds until the hold expires uncaptured: 1 to 604800 (7 days); 3600 when absent.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 604_800))]
    #[serde(default, deserialize_with = "crate::whole::opt_i64")]
    pub expires_in_s: Option<i64>,
}

/// `POST /v1/holds/{id}/capture`: the body is optional.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CaptureBody {
    /// Minor units to capture, above zero and at most the held amount; the whole hold when
    /// absent. The rest is released.
    #[serde(default, deserialize_with = "crate::whole::opt_i64")]
    pub amount: Option<i64>,
}

/// A hold: an amount of a wallet reserved for a capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct HoldDto {
    /// Identity (a transaction of kind `hold`).
    pub id: Uuid,
    /// `pending_approval`, `held`, `captured`, `voided`, `expired`, `denied`, `failed` or
    /// `rejected`. A hold past its expiry reads `expired`, released or not.
    #[cfg_attr(feature = "openapi", schema(example = "held"))]
    pub status: String,
    /// The wallet it reserves from.
    pub wallet_id: Uuid,
    /// The wallet a capture pays.
    pub to_wallet_id: Option<Uuid>,
    /// The external destination a capture pays.
    pub destination: Option<String>,
    /// The asset.
    #[cfg_attr(feature = "openapi", schema(example = "USD"))]
    pub asset: String,
    /// Minor units reserved.
    pub amount: i64,
    /// Minor units captured (0 until captured, and when voided or expired).
    pub captured: i64,
    /// When it expires uncaptured.
    pub expires_at: Option<DateTime<Utc>>,
    /// When its amount was reserved (`null` while it waits for approval, or if it never was).
    pub held_at: Option<DateTime<Utc>>,
    /// The client's note.
    pub memo: Option<String>,
    /// The client's metadata.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Value,
    /// The policy rule that decided, if one did.
    pub rule: Option<String>,
    /// Why it was denied, failed, held for approval, rejected or expired.
    pub reason: Option<String>,
    /// The budgets left after the decision.
    pub budget: BudgetDto,
    /// The owner's answer when it waited for approval: `approved` or `rejected`.
    pub decision: Option<String>,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

#[cfg(feature = "domain")]
impl From<Transaction> for HoldDto {
    fn from(t: Transaction) -> Self {
        Self {
            id: t.id.into(),
            status: t.status.as_str().to_owned(),
            wallet_id: t.from_wallet_id.map(Into::into).unwrap_or_default(),
            to_wallet_id: t.to_wallet_id.map(Into::into),
            destination: t.destination.map(String::from),
            asset: t.asset.into(),
            amount: t.amount.minor_units(),
            captured: t.hold.captured.map_or(0, Money::minor_units),
            expires_at: t.hold.expires_at,
            held_at: t.hold.held_at,
            memo: t.memo.map(String::from),
            metadata: t.metadata,
            rule: t.rule.map(|r| r.as_str().to_owned()),
            reason: t.reason,
            budget: t.budget.into(),
            decision: t.decision.map(|d| d.as_str().to_owned()),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A page of a wallet's holds, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct HoldPageDto {
    /// Newest first.
    pub items: Vec<HoldDto>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(feature = "domain")]
impl From<TransactionPage> for HoldPageDto {
    fn from(p: TransactionPage) -> Self {
        Self {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor.map(|c| c.to_string()),
        }
    }
}

/// `GET /v1/wallets/{id}/holds` query.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct HoldQuery {
    /// At most this many items (clamped to 1–200; default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page, as returned (opaque).
    pub cursor: Option<String>,
    /// Only holds in this status (as they stand now: a hold past its expiry is `expired`).
    pub status: Option<String>,
}

/// What is left of a wallet's budgets after a decision, and of its agent's and owner's;
/// `null` when the rule (or the budget) is not set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct BudgetDto {
    /// Minor units that may still be spent today (UTC) under the wallet's daily limit.
    pub daily_remaining: Option<i64>,
    /// Transactions still allowed in the rolling hour.
    pub hourly_remaining: Option<u32>,
    /// Minor units that may still be spent this month (UTC) under the wallet's monthly limit.
    pub monthly_remaining: Option<i64>,
    /// What is left of the agent's budget in the asset; `null` when it has none.
    pub agent: Option<LevelBudgetDto>,
    /// What is left of the owner's budget in the asset; `null` when it has none.
    pub owner: Option<LevelBudgetDto>,
}

/// What is left of an agent's or owner's budget, over all its wallets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LevelBudgetDto {
    /// Minor units that may still be spent today (UTC); `null` without a daily limit.
    pub daily_remaining: Option<i64>,
    /// Minor units that may still be spent this month (UTC); `null` without a monthly limit.
    pub monthly_remaining: Option<i64>,
}

#[cfg(feature = "domain")]
impl From<LevelBudget> for LevelBudgetDto {
    fn from(b: LevelBudget) -> Self {
        Self {
            daily_remaining: b.daily_remaining.map(Money::minor_units),
            monthly_remaining: b.monthly_remaining.map(Money::minor_units),
        }
    }
}

#[cfg(feature = "domain")]
impl From<Budget> for BudgetDto {
    fn from(b: Budget) -> Self {
        Self {
            daily_remaining: b.daily_remaining.map(Money::minor_units),
            hourly_remaining: b.hourly_remaining,
            monthly_remaining: b.monthly_remaining.map(Money::minor_units),
            agent: b.agent.map(Into::into),
            owner: b.owner.map(Into::into),
        }
    }
}

/// A deposit, transfer or payment with the decision taken on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TransactionDto {
    /// Identity.
    pub id: Uuid,
    /// `deposit`, `transfer`, `payment`, `sweep` or `hold`.
    #[cfg_attr(feature = "openapi", schema(example = "transfer"))]
    pub kind: String,
    /// `pending_approval`, `completed`, `rejected`, `denied` or `failed`; a hold also
    /// `held`, `captured`, `voided` or `expired`.
    #[cfg_attr(feature = "openapi", schema(example = "completed"))]
    pub status: String,
    /// The asset moved.
    #[cfg_attr(feature = "openapi", schema(example = "USD"))]
    pub asset: String,
    /// Minor units.
    pub amount: i64,
    /// The paying wallet (`null` for a deposit).
    pub from_wallet_id: Option<Uuid>,
    /// The receiving wallet (`null` for a payment).
    pub to_wallet_id: Option<Uuid>,
    /// The external destination of a payment.
    pub destination: Option<String>,
    /// The client's note.
    pub memo: Option<String>,
    /// The client's metadata.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Value,
    /// The policy rule that decided, if one did, e.g. `daily_limit`.
    pub rule: Option<String>,
    /// The level whose rule denied it: `wallet`, `agent` or `owner`.
    pub level: Option<String>,
    /// When it stops waiting for approval (the wallet's `approval_timeout_s`); `null` if it
    /// never waited or waits without a deadline.
    pub approval_deadline: Option<DateTime<Utc>>,
    /// Why it was denied, failed, held or rejected.
    pub reason: Option<String>,
    /// The budgets left after the decision.
    pub budget: BudgetDto,
    /// The owner's answer when it waited for approval and was decided: `approved` or
    /// `rejected`; `null` otherwise.
    pub decision: Option<String>,
    /// The mandate that pre-approved it; `null` otherwise.
    pub mandate_id: Option<Uuid>,
    /// A capture: the hold it spends; `null` otherwise.
    pub hold_id: Option<Uuid>,
    /// A hold: when it expires uncaptured; `null` otherwise.
    pub expires_at: Option<DateTime<Utc>>,
    /// A hold that ended: the minor units captured; `null` otherwise.
    pub captured: Option<i64>,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

#[cfg(feature = "domain")]
impl From<Transaction> for TransactionDto {
    fn from(t: Transaction) -> Self {
        Self {
            id: t.id.into(),
            kind: t.kind.as_str().to_owned(),
            status: t.status.as_str().to_owned(),
            asset: t.asset.into(),
            amount: t.amount.minor_units(),
            from_wallet_id: t.from_wallet_id.map(Into::into),
            to_wallet_id: t.to_wallet_id.map(Into::into),
            destination: t.destination.map(String::from),
            memo: t.memo.map(String::from),
            metadata: t.metadata,
            rule: t.rule.map(|r| r.as_str().to_owned()),
            level: t.level.map(|l| l.as_str().to_owned()),
            approval_deadline: t.approval_deadline,
            reason: t.reason,
            budget: t.budget.into(),
            decision: t.decision.map(|d| d.as_str().to_owned()),
            mandate_id: t.mandate_id.map(Into::into),
            hold_id: t.hold.hold_id.map(Into::into),
            expires_at: t.hold.expires_at,
            captured: t.hold.captured.map(Money::minor_units),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A page query: `limit` (1–200, default 50) and the `cursor` of the previous page.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PageQuery {
    /// At most this many items (clamped to 1–200; default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page, as returned (opaque).
    pub cursor: Option<String>,
}

/// The query of a transaction list, as documented: `limit`, `cursor`, `status`, `kind`,
/// `from`, `to`, and any number (up to 10) of `metadata.<key>=<value>`, which the
/// description of the operation explains (OpenAPI cannot name parameters by a prefix). The
/// server reads the query's pairs itself (the metadata filters have no fixed names); a
/// client sends this type and adds its `metadata.<key>` pairs.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct TxListParams {
    /// At most this many items (clamped to 1–200; default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page, as returned (opaque).
    pub cursor: Option<String>,
    /// Only transactions in this status.
    pub status: Option<String>,
    /// Only transactions of this kind.
    pub kind: Option<String>,
    /// Created at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Created before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
}

/// A page of a wallet's transactions, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TransactionPageDto {
    /// Newest first.
    pub items: Vec<TransactionDto>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(feature = "domain")]
impl From<TransactionPage> for TransactionPageDto {
    fn from(p: TransactionPage) -> Self {
        Self {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor.map(|c| c.to_string()),
        }
    }
}
