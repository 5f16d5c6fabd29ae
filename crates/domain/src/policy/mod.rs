//! Wallet policies and the pure engine that decides on every outgoing transaction.

mod engine;
#[cfg(test)]
mod tests;

pub use engine::{
    Decision, LevelState, LevelUsage, Levels, SpendRequest, Usage, evaluate, evaluate_levels,
};

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::WalletId;
use crate::money::Money;
use crate::values::Counterparty;

/// The most counterparties an allow-list or block-list may hold.
pub const MAX_LIST_LEN: usize = 1000;

/// The rules an owner puts on one wallet. A rule left `None` (or an empty block-list) does
/// not restrict anything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRules {
    /// No single transaction may move more than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_transaction: Option<Money>,
    /// The wallet may not spend more than this per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_limit: Option<Money>,
    /// The wallet may not spend more than this per UTC calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_limit: Option<Money>,
    /// When set, money may only go to these counterparties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_destinations: Option<BTreeSet<Counterparty>>,
    /// Money may never go to these counterparties.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub blocked_destinations: BTreeSet<Counterparty>,
    /// A transaction moving more than this waits for the owner's approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_above: Option<Money>,
    /// At most this many outgoing transactions in any rolling hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_transactions_per_hour: Option<u32>,
    /// A transaction waiting for approval longer than this many seconds expires: nothing
    /// moves, and the owner's approval comes too late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout_s: Option<u32>,
}

/// An agent's or owner's limits in one asset, over every wallet below it. `None` does not
/// restrict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetLimits {
    /// No single transaction may move more than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_transaction: Option<Money>,
    /// Not more than this per UTC day, over every wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_limit: Option<Money>,
    /// Not more than this per UTC calendar month, over every wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_limit: Option<Money>,
}

impl BudgetLimits {
    /// What is left under these limits after `usage`.
    #[must_use]
    pub fn left(&self, usage: &LevelUsage) -> crate::model::LevelBudget {
        crate::model::LevelBudget {
            daily_remaining: self
                .daily_limit
                .map(|l| l.saturating_sub(usage.spent_today)),
            monthly_remaining: self
                .monthly_limit
                .map(|l| l.saturating_sub(usage.spent_month)),
        }
    }

    /// Whether no limit is set.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.max_per_transaction.is_none()
            && self.daily_limit.is_none()
            && self.monthly_limit.is_none()
    }
}

/// A level's budgets, per asset.
pub type Budgets = std::collections::BTreeMap<crate::values::AssetCode, BudgetLimits>;

/// Whose budget: an agent's (over its wallets) or an owner's (over all its wallets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetOwner {
    /// An agent's.
    Agent(crate::ids::AgentId),
    /// An owner's.
    Owner(crate::ids::OwnerId),
}

/// Where a rule is set: the wallet's policy, its agent's budget or its owner's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The wallet's policy.
    Wallet,
    /// The agent's budget, over all its wallets.
    Agent,
    /// The owner's budget, over all its wallets.
    Owner,
}

impl Level {
    /// The stored and reported name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Wallet => "wallet",
            Self::Agent => "agent",
            Self::Owner => "owner",
        }
    }

    /// Parses the stored name.
    #[must_use]
    pub fn from_db(s: &str) -> Option<Self> {
        [Self::Wallet, Self::Agent, Self::Owner]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

/// Why a set of rules was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A list is longer than [`MAX_LIST_LEN`].
    #[error("a destination list may hold at most {MAX_LIST_LEN} entries")]
    ListTooLong,
}

impl PolicyRules {
    /// Checks the rules as a whole.
    ///
    /// # Errors
    /// [`PolicyError::ListTooLong`] when a list exceeds [`MAX_LIST_LEN`].
    pub fn validate(&self) -> Result<(), PolicyError> {
        let allowed = self.allowed_destinations.as_ref().map_or(0, BTreeSet::len);
        if allowed > MAX_LIST_LEN || self.blocked_destinations.len() > MAX_LIST_LEN {
            return Err(PolicyError::ListTooLong);
        }
        Ok(())
    }

    /// Whether the hourly rule is set, so the adapter knows whether to count the last hour.
    #[must_use]
    pub const fn needs_hourly_count(&self) -> bool {
        self.max_transactions_per_hour.is_some()
    }
}

/// The policy of one wallet at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The wallet it governs.
    pub wallet_id: WalletId,
    /// Its rules.
    pub rules: PolicyRules,
    /// Bumped by every change; 0 for a wallet whose owner never set a policy.
    pub version: i64,
    /// When it was last set.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Policy {
    /// The policy of a wallet that has none: no rule restricts it.
    #[must_use]
    pub fn unrestricted(wallet_id: WalletId) -> Self {
        Self {
            wallet_id,
            rules: PolicyRules::default(),
            version: 0,
            updated_at: None,
        }
    }
}

/// The rule that decided a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The counterparty is on the block-list.
    BlockedDestination,
    /// The counterparty is not on the allow-list.
    AllowedDestinations,
    /// The amount is above the per-transaction maximum.
    MaxPerTransaction,
    /// The rolling hour's transaction count is used up.
    MaxTransactionsPerHour,
    /// The amount would exceed what is left of today's limit.
    DailyLimit,
    /// The amount would exceed what is left of this month's limit.
    MonthlyLimit,
    /// The amount is above the approval threshold.
    ApprovalAbove,
}

impl Rule {
    /// The stored and reported name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BlockedDestination => "blocked_destinations",
            Self::AllowedDestinations => "allowed_destinations",
            Self::MaxPerTransaction => "max_per_transaction",
            Self::MaxTransactionsPerHour => "max_transactions_per_hour",
            Self::DailyLimit => "daily_limit",
            Self::MonthlyLimit => "monthly_limit",
            Self::ApprovalAbove => "approval_above",
        }
    }

    /// Parses the stored name.
    #[must_use]
    pub fn from_db(s: &str) -> Option<Self> {
        [
            Self::BlockedDestination,
            Self::AllowedDestinations,
            Self::MaxPerTransaction,
            Self::MaxTransactionsPerHour,
            Self::DailyLimit,
            Self::MonthlyLimit,
            Self::ApprovalAbove,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
