//! The policy engine: a pure function from (rules, locked wallet state, usage, request) to a
//! decision. No I/O, no clock: everything it needs is passed in, so it is tested exhaustively.

use serde::{Deserialize, Serialize};

use super::{PolicyRules, Rule};
use crate::model::Budget;
use crate::money::Money;
use crate::values::Counterparty;

/// What the wallet has already spent, read under the wallet's row lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Minor units spent today (UTC) by completed outgoing transactions.
    pub spent_today: Money,
    /// Completed outgoing transactions today (UTC).
    pub count_today: u32,
    /// Completed outgoing transactions in the rolling hour before now.
    pub count_last_hour: u32,
}

/// The outgoing transaction being decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendRequest<'a> {
    /// The amount to move.
    pub amount: Money,
    /// Where it goes.
    pub counterparty: &'a Counterparty,
    /// The owner has already approved it: the approval rule no longer holds it back.
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
        /// The rule that refused it.
        rule: Rule,
        /// A sentence for the agent and the owner.
        reason: String,
        /// Budgets left now.
        budget: Budget,
    },
    /// The policy would allow it, but the wallet does not hold enough.
    InsufficientFunds {
        /// The wallet's balance.
        balance: Money,
        /// The amount asked for.
        amount: Money,
    },
}

impl Decision {
    /// The budget reported with the decision.
    #[must_use]
    pub const fn budget(&self) -> Budget {
        match self {
            Self::Allow { budget }
            | Self::NeedsApproval { budget, .. }
            | Self::Deny { budget, .. } => *budget,
            Self::InsufficientFunds { .. } => Budget {
                daily_remaining: None,
                hourly_remaining: None,
            },
        }
    }
}

/// Decides on an outgoing transaction.
///
/// Rules are checked in a fixed order — block-list, allow-list, per-transaction maximum,
/// hourly count, daily limit — and the first that refuses names itself. Only then are funds
/// checked (a policy refusal is the more useful answer), and last the approval threshold, so
/// nothing waits for an owner that could not be posted anyway.
#[must_use]
pub fn evaluate(
    rules: &PolicyRules,
    balance: Money,
    usage: &Usage,
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
    };
    let deny = |rule: Rule, reason: String| Decision::Deny {
        rule,
        reason,
        budget: now,
    };

    // The block-list ignores case (blocking too much is the safe side); the allow-list
    // matches the normalised form exactly, since case may matter to an address.
    if rules
        .blocked_destinations
        .iter()
        .any(|b| request.counterparty.blocked_by(b))
    {
        return deny(
            Rule::BlockedDestination,
            format!("{} is on the wallet's block-list", request.counterparty),
        );
    }
    if let Some(allowed) = &rules.allowed_destinations
        && !allowed.contains(request.counterparty)
    {
        return deny(
            Rule::AllowedDestinations,
            format!("{} is not on the wallet's allow-list", request.counterparty),
        );
    }
    if let Some(max) = rules.max_per_transaction
        && amount > max
    {
        return deny(
            Rule::MaxPerTransaction,
            format!("{amount} is above the maximum of {max} per transaction"),
        );
    }
    if let (Some(max), Some(left)) = (rules.max_transactions_per_hour, now.hourly_remaining)
        && left == 0
    {
        return deny(
            Rule::MaxTransactionsPerHour,
            format!("the wallet already made {max} transactions in the last hour"),
        );
    }
    if let (Some(limit), Some(left)) = (rules.daily_limit, now.daily_remaining)
        && amount > left
    {
        return deny(
            Rule::DailyLimit,
            format!("{amount} exceeds the {left} left of today's limit of {limit}"),
        );
    }
    if amount > balance {
        return Decision::InsufficientFunds { balance, amount };
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
    Decision::Allow {
        budget: Budget {
            daily_remaining: now.daily_remaining.map(|left| left.saturating_sub(amount)),
            hourly_remaining: now.hourly_remaining.map(|left| left.saturating_sub(1)),
        },
    }
}
