//! The policy engine: a pure function from (rules, budgets, locked wallet state, usage,
//! request) to a decision. No I/O, no clock: everything it needs is passed in, so it is
//! tested exhaustively.

use serde::{Deserialize, Serialize};

use super::{BudgetLimits, Level, PolicyRules, Rule};
use crate::model::{Budget, LevelBudget};
use crate::money::Money;
use crate::values::Counterparty;

/// What the wallet has already spent, read under the wallet's row lock. Open holds count as
/// spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Minor units spent today (UTC) by completed outgoing transactions and holds.
    pub spent_today: Money,
    /// Completed outgoing transactions and holds today (UTC).
    pub count_today: u32,
    /// Completed outgoing transactions and holds in the rolling hour before now.
    pub count_last_hour: u32,
    /// Minor units spent this UTC calendar month.
    #[serde(default)]
    pub spent_month: Money,
}

/// What every wallet of an agent (or of an owner) has spent in one asset, read under that
/// level's budget lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LevelUsage {
    /// Minor units spent today (UTC).
    pub spent_today: Money,
    /// Minor units spent this UTC calendar month.
    pub spent_month: Money,
}

/// A budget above the wallet (its agent's or its owner's), with what was spent under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelState<'a> {
    /// The limits.
    pub limits: &'a BudgetLimits,
    /// The spend they bound.
    pub usage: LevelUsage,
}

/// The budgets above the wallet that apply to a spend: none when not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Levels<'a> {
    /// The agent's budget in the wallet's asset.
    pub agent: Option<LevelState<'a>>,
    /// The owner's budget in the wallet's asset.
    pub owner: Option<LevelState<'a>>,
}

/// The outgoing transaction being decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendRequest<'a> {
    /// The amount to move.
    pub amount: Money,
    /// Where it goes.
    pub counterparty: &'a Counterparty,
    /// The owner has already approved it (or a mandate pre-approved it): the approval rule
    /// no longer holds it back. Hard limits still apply.
    pub approved: bool,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Post it now. The budget is what is left once it is posted.
    Allow {
        /// Budgets left after this transaction.
        budget: Budget,
    },
    /// Hold it for the owner's approval. The budget is what is left now.
    NeedsApproval {
        /// The rule that holds it.
        rule: Rule,
        /// Budgets left now.
        budget: Budget,
    },
    /// Refuse it. The budget is what is left now.
    Deny {
        /// The level whose rule refused it.
        level: Level,
        /// The rule that refused it.
        rule: Rule,
        /// A sentence for the agent and the owner.
        reason: String,
        /// Budgets left now.
        budget: Budget,
    },
    /// The policy would allow it, but the wallet does not have enough available.
    InsufficientFunds {
        /// What the wallet can spend (its balance less open holds).
        balance: Money,
        /// The amount asked for.
        amount: Money,
    },
}

impl Decision {
    /// The budget reported with the decision.
    #[must_use]
    pub fn budget(&self) -> Budget {
        match self {
            Self::Allow { budget }
            | Self::NeedsApproval { budget, .. }
            | Self::Deny { budget, .. } => *budget,
            Self::InsufficientFunds { .. } => Budget::default(),
        }
    }
}

/// What is left at one level above the wallet.
fn level_left(state: &LevelState<'_>) -> LevelBudget {
    state.limits.left(&state.usage)
}

/// The first of a level's limits the amount breaks, with the sentence that says so.
fn level_denial(
    name: &str,
    limits: &BudgetLimits,
    left: &LevelBudget,
    amount: Money,
) -> Option<(Rule, String)> {
    if let Some(max) = limits.max_per_transaction
        && amount > max
    {
        return Some((
            Rule::MaxPerTransaction,
            format!("{amount} is above the {name}'s maximum of {max} per transaction"),
        ));
    }
    if let (Some(limit), Some(rest)) = (limits.daily_limit, left.daily_remaining)
        && amount > rest
    {
        return Some((
            Rule::DailyLimit,
            format!("{amount} exceeds the {rest} left of the {name}'s daily limit of {limit}"),
        ));
    }
    if let (Some(limit), Some(rest)) = (limits.monthly_limit, left.monthly_remaining)
        && amount > rest
    {
        return Some((
            Rule::MonthlyLimit,
            format!("{amount} exceeds the {rest} left of the {name}'s monthly limit of {limit}"),
        ));
    }
    None
}

/// Decides on an outgoing transaction at the wallet level only (no budget above it).
#[must_use]
pub fn evaluate(
    rules: &PolicyRules,
    balance: Money,
    usage: &Usage,
    request: &SpendRequest<'_>,
) -> Decision {
    evaluate_levels(rules, balance, usage, &Levels::default(), request)
}

/// Decides on an outgoing transaction under the wallet's rules and the budgets of its agent
/// and owner, deny-wins.
///
/// Rules are checked in a fixed order — the wallet's block-list, allow-list, per-transaction
/// maximum, hourly count, daily and monthly limits; then the agent's budget (maximum, daily,
/// monthly); then the owner's — and the first that refuses names itself and its level. Only
/// then are funds checked (a policy refusal is the more useful answer), and last the approval
/// threshold, so nothing waits for an owner that could not be posted anyway.
#[must_use]
pub fn evaluate_levels(
    rules: &PolicyRules,
    available: Money,
    usage: &Usage,
    levels: &Levels<'_>,
    request: &SpendRequest<'_>,
) -> Decision {
    let amount = request.amount;
    let now = Budget {
        daily_remaining: rules
            .daily_limit
            .map(|limit| limit.saturating_sub(usage.spent_today)),
        hourly_remaining: rules
            .max_transactions_per_hour
            .map(|max| max.saturating_sub(usage.count_last_hour)),
        monthly_remaining: rules
            .monthly_limit
            .map(|limit| limit.saturating_sub(usage.spent_month)),
        agent: levels.agent.as_ref().map(level_left),
        owner: levels.owner.as_ref().map(level_left),
    };
    let deny = |level: Level, rule: Rule, reason: String| Decision::Deny {
        level,
        rule,
        reason,
        budget: now,
    };
    let wallet = |rule: Rule, reason: String| deny(Level::Wallet, rule, reason);

    // The block-list ignores case (blocking too much is the safe side); the allow-list
    // matches the normalised form exactly, since case may matter to an address.
    if rules
        .blocked_destinations
        .iter()
        .any(|b| request.counterparty.blocked_by(b))
    {
        return wallet(
            Rule::BlockedDestination,
            format!("{} is on the wallet's block-list", request.counterparty),
        );
    }
    if let Some(allowed) = &rules.allowed_destinations
        && !allowed.contains(request.counterparty)
    {
        return wallet(
            Rule::AllowedDestinations,
            format!("{} is not on the wallet's allow-list", request.counterparty),
        );
    }
    if let Some(max) = rules.max_per_transaction
        && amount > max
    {
        return wallet(
            Rule::MaxPerTransaction,
            format!("{amount} is above the maximum of {max} per transaction"),
        );
    }
    if let (Some(max), Some(left)) = (rules.max_transactions_per_hour, now.hourly_remaining)
        && left == 0
    {
        return wallet(
            Rule::MaxTransactionsPerHour,
            format!("the wallet already made {max} transactions in the last hour"),
        );
    }
    if let (Some(limit), Some(left)) = (rules.daily_limit, now.daily_remaining)
        && amount > left
    {
        return wallet(
            Rule::DailyLimit,
            format!("{amount} exceeds the {left} left of today's limit of {limit}"),
        );
    }
    if let (Some(limit), Some(left)) = (rules.monthly_limit, now.monthly_remaining)
        && amount > left
    {
        return wallet(
            Rule::MonthlyLimit,
            format!("{amount} exceeds the {left} left of this month's limit of {limit}"),
        );
    }
    for (level, state, left) in [
        (Level::Agent, levels.agent.as_ref(), now.agent),
        (Level::Owner, levels.owner.as_ref(), now.owner),
    ] {
        if let (Some(state), Some(left)) = (state, left)
            && let Some((rule, reason)) = level_denial(level.as_str(), state.limits, &left, amount)
        {
            return deny(level, rule, reason);
        }
    }
    if amount > available {
        return Decision::InsufficientFunds {
            balance: available,
            amount,
        };
    }
    if let Some(threshold) = rules.approval_above
        && amount > threshold
        && !request.approved
    {
        return Decision::NeedsApproval {
            rule: Rule::ApprovalAbove,
            budget: now,
        };
    }
    let spent = |left: Option<Money>| left.map(|l| l.saturating_sub(amount));
    let after = |b: Option<LevelBudget>| {
        b.map(|b| LevelBudget {
            daily_remaining: spent(b.daily_remaining),
            monthly_remaining: spent(b.monthly_remaining),
        })
    };
    Decision::Allow {
        budget: Budget {
            daily_remaining: spent(now.daily_remaining),
            hourly_remaining: now.hourly_remaining.map(|left| left.saturating_sub(1)),
            monthly_remaining: spent(now.monthly_remaining),
            agent: after(now.agent),
            owner: after(now.owner),
        },
    }
}
