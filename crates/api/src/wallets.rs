//! Wallets, balances, spend summaries and policies.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
#[cfg(feature = "domain")]
use waiaas_domain::{
    Budget, Counterparty, Money, Policy, PolicyRules, SpendSummary, SpendTotals, Wallet,
    WalletBalance,
};

use crate::BudgetDto;
#[cfg(feature = "domain")]
use crate::Invalid;

/// `POST /v1/agents/{id}/wallets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWallet {
    /// A supported asset code, e.g. `USD`.
    #[cfg_attr(feature = "openapi", schema(example = "USD"))]
    pub asset: String,
    /// Optional display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A wallet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WalletDto {
    /// Identity.
    pub id: Uuid,
    /// The agent holding it.
    pub agent_id: Uuid,
    /// Its asset.
    #[cfg_attr(feature = "openapi", schema(example = "USD"))]
    pub asset: String,
    /// Its display name.
    pub name: Option<String>,
    /// The balance in minor units.
    pub balance: i64,
    /// Minor units reserved by open holds (part of `balance`).
    pub held: i64,
    /// Minor units the wallet can spend: `balance - held`.
    pub available: i64,
    /// Bumped by every change of the wallet.
    pub version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

#[cfg(feature = "domain")]
impl From<Wallet> for WalletDto {
    fn from(w: Wallet) -> Self {
        Self {
            id: w.id.into(),
            agent_id: w.agent_id.into(),
            asset: w.asset.into(),
            name: w.name.map(String::from),
            balance: w.balance.minor_units(),
            held: w.held.minor_units(),
            available: w.balance.saturating_sub(w.held).minor_units(),
            version: w.version,
            created_at: w.created_at,
        }
    }
}

/// `GET /v1/wallets` query.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct WalletFilter {
    /// Only this agent's wallets.
    pub agent_id: Option<Uuid>,
}

/// A wallet's balance at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct BalanceDto {
    /// The wallet.
    pub wallet_id: Uuid,
    /// Its asset.
    pub asset: String,
    /// Minor units.
    pub balance: i64,
    /// Minor units reserved by open holds (part of `balance`).
    pub held: i64,
    /// Minor units the wallet can spend: `balance - held`.
    pub available: i64,
    /// The wallet version the balance was read at.
    pub version: i64,
}

#[cfg(feature = "domain")]
impl From<WalletBalance> for BalanceDto {
    fn from(b: WalletBalance) -> Self {
        Self {
            wallet_id: b.wallet_id.into(),
            asset: b.asset.into(),
            balance: b.balance.minor_units(),
            held: b.held.minor_units(),
            available: b.balance.saturating_sub(b.held).minor_units(),
            version: b.version,
        }
    }
}

/// Spend in one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TotalsDto {
    /// Minor units spent; when `capped`, 9223372036854775807 and the true total is above it.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, format = Int64))]
    pub spent: i64,
    /// Outgoing transactions.
    pub count: u32,
    /// The true total exceeds the largest amount the API reports: `spent` is a floor.
    pub capped: bool,
}

#[cfg(feature = "domain")]
impl From<SpendTotals> for TotalsDto {
    fn from(t: SpendTotals) -> Self {
        Self {
            spent: t.spent.minor_units(),
            count: t.count,
            capped: t.capped,
        }
    }
}

/// A wallet's outgoing spend today and this month (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SummaryDto {
    /// The wallet.
    pub wallet_id: Uuid,
    /// Today (UTC).
    pub today: TotalsDto,
    /// This month (UTC).
    pub month: TotalsDto,
    /// What is left under the wallet's daily and monthly limits and under its agent's and
    /// owner's budgets (`hourly_remaining` is not counted here and is `null`). Spend counts
    /// completed transfers and payments and open holds.
    pub budget: BudgetDto,
}

#[cfg(feature = "domain")]
impl SummaryDto {
    /// The summary with the budget left.
    pub fn new(s: SpendSummary, budget: Budget) -> Self {
        Self {
            wallet_id: s.wallet_id.into(),
            today: s.today.into(),
            month: s.month.into(),
            budget: budget.into(),
        }
    }
}

/// `PUT /v1/wallets/{id}/policy`: the complete rules; a rule left out does not restrict.
/// Counterparties are `wallet:<uuid>` or an external destination.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// No single transaction may move more than this (minor units).
    #[serde(default, deserialize_with = "crate::whole::opt_i64")]
    pub max_per_transaction: Option<i64>,
    /// At most this much per UTC day (minor units).
    #[serde(default, deserialize_with = "crate::whole::opt_i64")]
    pub daily_limit: Option<i64>,
    /// When set, money may only go to these counterparties.
    pub allowed_destinations: Option<Vec<String>>,
    /// Money may never go to these counterparties.
    pub blocked_destinations: Option<Vec<String>>,
    /// Transactions above this wait for the owner's approval (minor units).
    #[serde(default, deserialize_with = "crate::whole::opt_i64")]
    pub approval_above: Option<i64>,
    /// At most this many outgoing transactions in any rolling hour.
    #[serde(default, deserialize_with = "crate::whole::opt_u32")]
    pub max_transactions_per_hour: Option<u32>,
    /// At most this much per UTC calendar month (minor units).
    #[serde(default, deserialize_with = "crate::whole::opt_i64")]
    pub monthly_limit: Option<i64>,
    /// A transaction waiting for approval longer than this many seconds (1 to 2592000, 30
    /// days) expires; nothing moves.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 2_592_000))]
    #[serde(default, deserialize_with = "crate::whole::opt_u32")]
    pub approval_timeout_s: Option<u32>,
}

#[cfg(feature = "domain")]
impl TryFrom<PolicyBody> for PolicyRules {
    type Error = Invalid;

    fn try_from(b: PolicyBody) -> Result<Self, Invalid> {
        let money = |field: &str, v: Option<i64>| {
            v.map(Money::new)
                .transpose()
                .map_err(|e| Invalid::new("invalid_amount", format!("`{field}`: {e}")))
        };
        let parties = |list: Vec<String>| {
            // Counted as written, duplicates included: the limit the document states.
            if list.len() > waiaas_domain::policy::MAX_LIST_LEN {
                return Err(Invalid::new(
                    "invalid_policy",
                    waiaas_domain::policy::PolicyError::ListTooLong.to_string(),
                ));
            }
            list.iter()
                .map(|s| Counterparty::parse(s))
                .collect::<Result<_, _>>()
                .map_err(|e| Invalid::new("invalid_value", e.to_string()))
        };
        Ok(Self {
            max_per_transaction: money("max_per_transaction", b.max_per_transaction)?,
            daily_limit: money("daily_limit", b.daily_limit)?,
            allowed_destinations: b.allowed_destinations.map(parties).transpose()?,
            blocked_destinations: b
                .blocked_destinations
                .map(parties)
                .transpose()?
                .unwrap_or_default(),
            approval_above: money("approval_above", b.approval_above)?,
            max_transactions_per_hour: b.max_transactions_per_hour,
            monthly_limit: money("monthly_limit", b.monthly_limit)?,
            approval_timeout_s: match b.approval_timeout_s {
                Some(s) if !(1..=MAX_APPROVAL_TIMEOUT_S).contains(&s) => {
                    return Err(Invalid::new(
                        "invalid_policy",
                        "`approval_timeout_s` must be between 1 and 2592000 (30 days)",
                    ));
                }
                other => other,
            },
        })
    }
}

/// A wallet's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PolicyDto {
    /// The wallet it governs.
    pub wallet_id: Uuid,
    /// Bumped by every change; 0 when no policy was ever set.
    pub version: i64,
    /// When it was last set.
    pub updated_at: Option<DateTime<Utc>>,
    /// No single transaction may move more than this.
    pub max_per_transaction: Option<i64>,
    /// At most this much per UTC day.
    pub daily_limit: Option<i64>,
    /// When set, money may only go to these counterparties.
    pub allowed_destinations: Option<Vec<String>>,
    /// Money may never go to these counterparties.
    pub blocked_destinations: Vec<String>,
    /// Transactions above this wait for approval.
    pub approval_above: Option<i64>,
    /// At most this many outgoing transactions per rolling hour.
    pub max_transactions_per_hour: Option<u32>,
    /// At most this much per UTC calendar month.
    pub monthly_limit: Option<i64>,
    /// A transaction waiting for approval longer than this many seconds expires.
    pub approval_timeout_s: Option<u32>,
}

/// The longest `approval_timeout_s`: 30 days.
#[cfg(feature = "domain")]
const MAX_APPROVAL_TIMEOUT_S: u32 = 2_592_000;

#[cfg(feature = "domain")]
impl From<Policy> for PolicyDto {
    fn from(p: Policy) -> Self {
        let r = p.rules;
        let texts = |set: std::collections::BTreeSet<Counterparty>| {
            set.iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        Self {
            wallet_id: p.wallet_id.into(),
            version: p.version,
            updated_at: p.updated_at,
            max_per_transaction: r.max_per_transaction.map(Money::minor_units),
            daily_limit: r.daily_limit.map(Money::minor_units),
            allowed_destinations: r.allowed_destinations.map(texts),
            blocked_destinations: texts(r.blocked_destinations),
            approval_above: r.approval_above.map(Money::minor_units),
            max_transactions_per_hour: r.max_transactions_per_hour,
            monthly_limit: r.monthly_limit.map(Money::minor_units),
            approval_timeout_s: r.approval_timeout_s,
        }
    }
}
