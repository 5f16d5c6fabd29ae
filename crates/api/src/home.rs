//! `GET /v1/home`: the owner's home snapshot, what the console shows first.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;
#[cfg(feature = "domain")]
use waiaas_domain::model::{LevelView, WalletView};

use crate::{AgentDto, BudgetDto, TotalsDto, TransactionDto, WalletDto};

/// `GET /v1/home`: what the owner console shows first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct HomeDto {
    /// The UTC day spend is counted for.
    pub day: NaiveDate,
    /// Every agent that is not deleted, oldest first, with its wallets and budgets.
    pub agents: Vec<HomeAgentDto>,
    /// The owner's own budgets, per asset, with what was spent and what is left.
    pub budgets: Vec<LevelDto>,
    /// The transactions waiting for the owner's approval, the nearest deadline first (at
    /// most 100).
    pub pending: Vec<TransactionDto>,
    /// How many transactions wait for approval in all.
    pub pending_total: u64,
    /// When this answer was made.
    pub generated_at: DateTime<Utc>,
}

/// An agent on the home page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct HomeAgentDto {
    /// The agent, with its presence.
    #[serde(flatten)]
    pub agent: AgentDto,
    /// Its budgets, per asset.
    pub budgets: Vec<LevelDto>,
    /// Its wallets, oldest first.
    pub wallets: Vec<HomeWalletDto>,
}

/// A wallet on the home page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct HomeWalletDto {
    /// The wallet, as `GET /v1/wallets/{id}` shows it.
    #[serde(flatten)]
    pub wallet: WalletDto,
    /// Spent today (UTC).
    pub today: TotalsDto,
    /// Spent this month (UTC).
    pub month: TotalsDto,
    /// What is left under the wallet's limits and its agent's and owner's budgets, as
    /// `GET /v1/wallets/{id}/summary` says.
    pub budget: BudgetDto,
}

/// One asset's budget of an agent or of the owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LevelDto {
    /// The asset.
    #[cfg_attr(feature = "openapi", schema(example = "USD"))]
    pub asset: String,
    /// The most one transaction may move (minor units), if limited.
    pub max_per_transaction: Option<i64>,
    /// The daily limit over every wallet below (minor units), if any.
    pub daily_limit: Option<i64>,
    /// The monthly limit over every wallet below (minor units), if any.
    pub monthly_limit: Option<i64>,
    /// Spent today (UTC) under it.
    pub spent_today: i64,
    /// Spent this month (UTC) under it.
    pub spent_month: i64,
    /// What is left today, if limited.
    pub daily_remaining: Option<i64>,
    /// What is left this month, if limited.
    pub monthly_remaining: Option<i64>,
}

#[cfg(feature = "domain")]
impl From<LevelView> for LevelDto {
    fn from(v: LevelView) -> Self {
        Self {
            asset: v.asset.into(),
            max_per_transaction: v.limits.max_per_transaction.map(|m| m.minor_units()),
            daily_limit: v.limits.daily_limit.map(|m| m.minor_units()),
            monthly_limit: v.limits.monthly_limit.map(|m| m.minor_units()),
            spent_today: v.usage.spent_today.minor_units(),
            spent_month: v.usage.spent_month.minor_units(),
            daily_remaining: v.left.daily_remaining.map(|m| m.minor_units()),
            monthly_remaining: v.left.monthly_remaining.map(|m| m.minor_units()),
        }
    }
}

#[cfg(feature = "domain")]
impl From<WalletView> for HomeWalletDto {
    fn from(v: WalletView) -> Self {
        Self {
            wallet: v.wallet.into(),
            today: v.today.into(),
            month: v.month.into(),
            budget: v.budget.into(),
        }
    }
}
