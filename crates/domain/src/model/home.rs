//! An owner's home: every agent with its wallets, their spend against the budget at each
//! level, and the transactions waiting for the owner's approval — what the console shows
//! first. The repository reads the raw materials as one [`HomeData`] (cached as one entry);
//! each wallet's balance and spend come from the wallet port's own balance and summary reads
//! (cached entries of their own), and [`Home::from_data`] derives what is left of each
//! budget, the same way as `Services::budget_left`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Agent, AgentStatus, Budget, LevelBudget, SpendSummary, SpendTotals, Wallet, WalletBalance,
};
use super::{Transaction, TransactionStatus};
use crate::ids::{AgentId, OwnerId, WalletId};
use crate::policy::{BudgetLimits, LevelUsage, PolicyRules};
use crate::values::AssetCode;

/// The most transactions waiting for approval a home lists (oldest deadlines are not
/// dropped silently: `pending_total` counts them all).
pub const HOME_PENDING_LIMIT: usize = 100;

/// What PostgreSQL holds for an owner's home on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeData {
    /// The owner.
    pub owner_id: OwnerId,
    /// The UTC day the spend is counted for.
    pub day: NaiveDate,
    /// Read before everything else, and different whenever anything below is (see
    /// `WalletRepository::home_fingerprint`): a copy whose fingerprint is PostgreSQL's
    /// current one is current.
    pub fingerprint: String,
    /// When it was read (PostgreSQL's clock, microseconds): grows from one read to the next.
    pub version: i64,
    /// The agents that are not deleted, oldest first.
    pub agents: Vec<Agent>,
    /// Their wallets, oldest first.
    pub wallets: Vec<HomeWallet>,
    /// The budgets of the agents and of the owner, with what was spent under them.
    pub levels: Vec<HomeLevel>,
    /// The transactions waiting for the owner's approval, newest first (at most
    /// [`HOME_PENDING_LIMIT`]).
    pub pending: Vec<Transaction>,
    /// How many transactions wait for approval in all.
    pub pending_total: u64,
}

/// A wallet with its policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeWallet {
    /// The wallet.
    pub wallet: Wallet,
    /// Its policy's rules (the daily and monthly limits count here).
    pub rules: PolicyRules,
}

/// A wallet's balance and spend as read for one home (through their own reads).
pub type WalletNow = (Option<WalletBalance>, SpendSummary);

/// One asset's budget of an agent (`agent_id`) or of the owner (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeLevel {
    /// The agent, or `None` for the owner's own budget.
    pub agent_id: Option<AgentId>,
    /// The asset.
    pub asset: AssetCode,
    /// The limits.
    pub limits: BudgetLimits,
    /// What was spent under them.
    pub usage: LevelUsage,
}

/// The home as the owner sees it at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    /// The UTC day the spend is counted for.
    pub day: NaiveDate,
    /// Every agent that is not deleted, with its wallets.
    pub agents: Vec<HomeAgent>,
    /// The owner's own budgets.
    pub budgets: Vec<LevelView>,
    /// What waits for the owner's approval now, oldest deadline first.
    pub pending: Vec<Transaction>,
    /// How many transactions wait for approval in all (more than `pending` holds when
    /// there are over [`HOME_PENDING_LIMIT`]).
    pub pending_total: u64,
}

/// An agent on the home page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeAgent {
    /// The agent.
    pub agent: Agent,
    /// Its budgets.
    pub budgets: Vec<LevelView>,
    /// Its wallets.
    pub wallets: Vec<WalletView>,
}

/// A budget with what is left of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelView {
    /// The asset.
    pub asset: AssetCode,
    /// The limits.
    pub limits: BudgetLimits,
    /// What was spent.
    pub usage: LevelUsage,
    /// What is left.
    pub left: LevelBudget,
}

/// A wallet on the home page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletView {
    /// The wallet (balance and held).
    pub wallet: Wallet,
    /// Spent today (UTC).
    pub today: SpendTotals,
    /// Spent this month (UTC).
    pub month: SpendTotals,
    /// What is left under the wallet's limits and its agent's and owner's budgets.
    pub budget: Budget,
}

impl Home {
    /// The home at `now` from what the repository read and each wallet's balance and spend
    /// (`live`; a wallet without them is left out): budgets left computed as
    /// `Services::budget_left` does, and only the transactions still waiting at `now`.
    #[must_use]
    pub fn from_data(
        data: HomeData,
        live: &BTreeMap<WalletId, WalletNow>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut levels: BTreeMap<(Option<AgentId>, AssetCode), LevelView> = BTreeMap::new();
        for level in data.levels {
            let left = level.limits.left(&level.usage);
            levels.insert(
                (level.agent_id, level.asset.clone()),
                LevelView {
                    asset: level.asset,
                    limits: level.limits,
                    usage: level.usage,
                    left,
                },
            );
        }
        let mut agents: Vec<HomeAgent> = data
            .agents
            .into_iter()
            .filter(|a| a.status != AgentStatus::Revoked)
            .map(|agent| HomeAgent {
                budgets: levels
                    .iter()
                    .filter(|((of, _), _)| *of == Some(agent.id))
                    .map(|(_, v)| v.clone())
                    .collect(),
                agent,
                wallets: Vec::new(),
            })
            .collect();
        for mut w in data.wallets {
            let Some(holder) = agents.iter_mut().find(|a| a.agent.id == w.wallet.agent_id) else {
                continue;
            };
            let Some((balance, spend)) = live.get(&w.wallet.id) else {
                continue;
            };
            if let Some(b) = balance {
                w.wallet.balance = b.balance;
                w.wallet.held = b.held;
                w.wallet.version = b.version;
            }
            let asset = &w.wallet.asset;
            let budget = Budget {
                daily_remaining: w
                    .rules
                    .daily_limit
                    .map(|l| l.saturating_sub(spend.today.spent)),
                monthly_remaining: w
                    .rules
                    .monthly_limit
                    .map(|l| l.saturating_sub(spend.month.spent)),
                agent: levels
                    .get(&(Some(w.wallet.agent_id), asset.clone()))
                    .map(|v| v.left),
                owner: levels.get(&(None, asset.clone())).map(|v| v.left),
                ..Budget::default()
            };
            holder.wallets.push(WalletView {
                today: spend.today,
                month: spend.month,
                budget,
                wallet: w.wallet,
            });
        }
        let budgets = levels
            .into_iter()
            .filter(|((of, _), _)| of.is_none())
            .map(|(_, v)| v)
            .collect();
        // Those the repository did not list (over the limit) are counted as still waiting.
        let unlisted = data.pending_total.saturating_sub(data.pending.len() as u64);
        let mut pending: Vec<Transaction> = data
            .pending
            .into_iter()
            .filter(|t| t.status_at(now) == TransactionStatus::PendingApproval)
            .collect();
        pending.sort_by_key(|t| (t.approval_deadline, t.created_at));
        Self {
            day: data.day,
            agents,
            budgets,
            pending_total: pending.len() as u64 + unlisted,
            pending,
        }
    }
}
