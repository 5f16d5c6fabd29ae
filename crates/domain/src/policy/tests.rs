//! Exhaustive and property tests of the policy engine.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::ids::WalletId;
use crate::model::Budget;
use crate::values::Destination;

fn m(v: i64) -> Money {
    Money::new(v).unwrap()
}

fn shop() -> Counterparty {
    Counterparty::External(Destination::parse("shop-1").unwrap())
}

fn spend(amount: i64, to: &Counterparty) -> SpendRequest<'_> {
    SpendRequest {
        amount: m(amount),
        counterparty: to,
        approved: false,
    }
}

fn rule_of(d: &Decision) -> Option<Rule> {
    match d {
        Decision::Deny { rule, .. } | Decision::NeedsApproval { rule, .. } => Some(*rule),
        _ => None,
    }
}

#[test]
fn an_empty_policy_allows_anything_the_wallet_can_pay() {
    let to = shop();
    let d = evaluate(
        &PolicyRules::default(),
        m(100),
        &Usage::default(),
        &spend(100, &to),
    );
    assert_eq!(
        d,
        Decision::Allow {
            budget: Budget::default()
        }
    );
}

#[test]
fn a_transfer_over_the_wallet_balance_is_insufficient_funds() {
    let to = shop();
    let d = evaluate(
        &PolicyRules::default(),
        m(99),
        &Usage::default(),
        &spend(100, &to),
    );
    assert_eq!(
        d,
        Decision::InsufficientFunds {
            balance: m(99),
            amount: m(100)
        }
    );
}

#[test]
fn a_transfer_over_the_per_transaction_maximum_is_denied() {
    let to = shop();
    let rules = PolicyRules {
        max_per_transaction: Some(m(50)),
        ..Default::default()
    };
    assert_eq!(
        rule_of(&evaluate(
            &rules,
            m(1000),
            &Usage::default(),
            &spend(51, &to)
        )),
        Some(Rule::MaxPerTransaction)
    );
    assert!(matches!(
        evaluate(&rules, m(1000), &Usage::default(), &spend(50, &to)),
        Decision::Allow { .. }
    ));
}

#[test]
fn a_transfer_over_the_daily_limit_is_denied_with_the_budget_left() {
    let to = shop();
    let rules = PolicyRules {
        daily_limit: Some(m(200)),
        ..Default::default()
    };
    let usage = Usage {
        spent_today: m(190),
        count_today: 19,
        ..Usage::default()
    };
    match evaluate(&rules, m(1000), &usage, &spend(11, &to)) {
        Decision::Deny {
            rule,
            budget,
            reason,
            level,
        } => {
            assert_eq!(level, Level::Wallet);
            assert_eq!(rule, Rule::DailyLimit);
            assert_eq!(budget.daily_remaining, Some(m(10)));
            assert!(reason.contains("10 left"), "{reason}");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    match evaluate(&rules, m(1000), &usage, &spend(10, &to)) {
        Decision::Allow { budget } => assert_eq!(budget.daily_remaining, Some(m(0))),
        other => panic!("expected an allow, got {other:?}"),
    }
}

#[test]
fn the_block_list_wins_over_the_allow_list() {
    let to = shop();
    let rules = PolicyRules {
        allowed_destinations: Some(BTreeSet::from([to.clone()])),
        blocked_destinations: BTreeSet::from([to.clone()]),
        ..Default::default()
    };
    assert_eq!(
        rule_of(&evaluate(&rules, m(10), &Usage::default(), &spend(1, &to))),
        Some(Rule::BlockedDestination)
    );
}

#[test]
fn the_block_list_cannot_be_dodged_by_case_or_look_alike_forms() {
    let rules: PolicyRules =
        serde_json::from_value(serde_json::json!({"blocked_destinations": ["evil-corp"]})).unwrap();
    for spelling in [
        "evil-corp",
        "EVIL-CORP",
        "Evil-Corp",
        "ｅｖｉｌ-corp",
        "ＥＶＩＬ-ＣＯＲＰ",
    ] {
        let to = Counterparty::parse(spelling).unwrap();
        assert_eq!(
            rule_of(&evaluate(&rules, m(10), &Usage::default(), &spend(1, &to))),
            Some(Rule::BlockedDestination),
            "{spelling} got through"
        );
    }
    assert!(Counterparty::parse("evil-corp\u{200B}").is_err());
}

#[test]
fn the_allow_list_matches_the_normalised_form_exactly() {
    let rules: PolicyRules =
        serde_json::from_value(serde_json::json!({"allowed_destinations": ["AbC123"]})).unwrap();
    let allowed = Counterparty::parse("ＡｂＣ１２３").unwrap();
    assert!(matches!(
        evaluate(&rules, m(10), &Usage::default(), &spend(1, &allowed)),
        Decision::Allow { .. }
    ));
    let other_case = Counterparty::parse("abc123").unwrap();
    assert_eq!(
        rule_of(&evaluate(
            &rules,
            m(10),
            &Usage::default(),
            &spend(1, &other_case)
        )),
        Some(Rule::AllowedDestinations)
    );
}

#[test]
fn a_destination_off_the_allow_list_is_denied() {
    let to = shop();
    let other = Counterparty::Wallet(WalletId::new());
    let rules = PolicyRules {
        allowed_destinations: Some(BTreeSet::from([other])),
        ..Default::default()
    };
    assert_eq!(
        rule_of(&evaluate(&rules, m(10), &Usage::default(), &spend(1, &to))),
        Some(Rule::AllowedDestinations)
    );
}

#[test]
fn the_hourly_count_is_enforced() {
    let to = shop();
    let rules = PolicyRules {
        max_transactions_per_hour: Some(3),
        ..Default::default()
    };
    let full = Usage {
        count_last_hour: 3,
        ..Default::default()
    };
    assert_eq!(
        rule_of(&evaluate(&rules, m(10), &full, &spend(1, &to))),
        Some(Rule::MaxTransactionsPerHour)
    );
    let one_left = Usage {
        count_last_hour: 2,
        ..Default::default()
    };
    assert_eq!(
        evaluate(&rules, m(10), &one_left, &spend(1, &to)),
        Decision::Allow {
            budget: Budget {
                hourly_remaining: Some(0),
                ..Budget::default()
            }
        }
    );
}

#[test]
fn an_amount_above_the_threshold_needs_approval_until_approved() {
    let to = shop();
    let rules = PolicyRules {
        approval_above: Some(m(100)),
        ..Default::default()
    };
    assert_eq!(
        rule_of(&evaluate(
            &rules,
            m(1000),
            &Usage::default(),
            &spend(101, &to)
        )),
        Some(Rule::ApprovalAbove)
    );
    assert!(matches!(
        evaluate(&rules, m(1000), &Usage::default(), &spend(100, &to)),
        Decision::Allow { .. }
    ));
    let approved = SpendRequest {
        approved: true,
        ..spend(101, &to)
    };
    assert!(matches!(
        evaluate(&rules, m(1000), &Usage::default(), &approved),
        Decision::Allow { .. }
    ));
}

#[test]
fn nothing_waits_for_approval_that_could_not_be_paid() {
    let to = shop();
    let rules = PolicyRules {
        approval_above: Some(m(10)),
        ..Default::default()
    };
    assert!(matches!(
        evaluate(&rules, m(50), &Usage::default(), &spend(60, &to)),
        Decision::InsufficientFunds { .. }
    ));
}

#[test]
fn rules_serialize_as_the_api_shows_them() {
    let rules = PolicyRules {
        daily_limit: Some(m(200)),
        blocked_destinations: BTreeSet::from([shop()]),
        ..Default::default()
    };
    let json = serde_json::to_value(&rules).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"daily_limit": 200, "blocked_destinations": ["shop-1"]})
    );
    assert_eq!(serde_json::from_value::<PolicyRules>(json).unwrap(), rules);
    assert!(serde_json::from_value::<PolicyRules>(serde_json::json!({"dayly_limit": 1})).is_err());
}

fn opt_money() -> impl Strategy<Value = Option<Money>> {
    prop::option::of((0_i64..2_000).prop_map(m))
}

/// `dest-<i>`, or `DEST-<i>` when `upper`: block-lists must match both.
fn dest(i: u8, upper: bool) -> Counterparty {
    let text = format!("dest-{i}");
    let text = if upper { text.to_uppercase() } else { text };
    Counterparty::External(Destination::parse(&text).unwrap())
}

fn blocked(rules: &PolicyRules, to: &Counterparty) -> bool {
    rules.blocked_destinations.iter().any(|b| to.blocked_by(b))
}

prop_compose! {
    fn arb_rules()(
        max_per_transaction in opt_money(),
        daily_limit in opt_money(),
        approval_above in opt_money(),
        max_transactions_per_hour in prop::option::of(0_u32..10),
        monthly_limit in opt_money(),
        block in prop::collection::btree_set((0_u8..4, any::<bool>()), 0..3),
        allow in prop::option::of(prop::collection::btree_set(0_u8..4, 0..4)),
    ) -> PolicyRules {
        PolicyRules {
            max_per_transaction,
            daily_limit,
            allowed_destinations: allow.map(|s| s.into_iter().map(|i| dest(i, false)).collect()),
            blocked_destinations: block.into_iter().map(|(i, upper)| dest(i, upper)).collect(),
            approval_above,
            max_transactions_per_hour,
            monthly_limit,
            approval_timeout_s: None,
        }
    }
}

prop_compose! {
    fn arb_level()(
        max_per_transaction in opt_money(),
        daily_limit in opt_money(),
        monthly_limit in opt_money(),
        today in 0_i64..3_000,
        earlier in 0_i64..3_000,
    ) -> (BudgetLimits, LevelUsage) {
        (
            BudgetLimits { max_per_transaction, daily_limit, monthly_limit },
            LevelUsage { spent_today: m(today), spent_month: m(today + earlier) },
        )
    }
}

/// Whether a level's limits allow `amount` on top of what was spent under them.
fn level_allows(level: &Option<(BudgetLimits, LevelUsage)>, amount: i64) -> bool {
    level.as_ref().is_none_or(|(l, u)| {
        l.max_per_transaction
            .is_none_or(|x| amount <= x.minor_units())
            && l.daily_limit
                .is_none_or(|x| u.spent_today.minor_units() + amount <= x.minor_units())
            && l.monthly_limit
                .is_none_or(|x| u.spent_month.minor_units() + amount <= x.minor_units())
    })
}

proptest! {
    #[test]
    fn an_allowed_spend_respects_every_rule_at_every_level(
        rules in arb_rules(),
        balance in 0_i64..3_000,
        spent in 0_i64..3_000,
        earlier_this_month in 0_i64..3_000,
        count_last_hour in 0_u32..12,
        agent in prop::option::of(arb_level()),
        owner in prop::option::of(arb_level()),
        amount in 1_i64..3_000,
        dest_index in 0_u8..4,
        upper in any::<bool>(),
        approved in any::<bool>(),
    ) {
        let to = dest(dest_index, upper);
        let usage = Usage {
            spent_today: m(spent),
            count_today: 0,
            count_last_hour,
            spent_month: m(spent + earlier_this_month),
        };
        let req = SpendRequest { amount: m(amount), counterparty: &to, approved };
        let levels = Levels {
            agent: agent.as_ref().map(|l| LevelState { limits: &l.0, usage: l.1 }),
            owner: owner.as_ref().map(|l| LevelState { limits: &l.0, usage: l.1 }),
        };
        let decision = evaluate_levels(&rules, m(balance), &usage, &levels, &req);
        match &decision {
            Decision::Allow { budget } => {
                prop_assert!(amount <= balance);
                prop_assert!(!blocked(&rules, &to));
                if let Some(allowed) = &rules.allowed_destinations { prop_assert!(allowed.contains(&to)); }
                if let Some(max) = rules.max_per_transaction { prop_assert!(amount <= max.minor_units()); }
                if let Some(limit) = rules.daily_limit {
                    prop_assert!(spent + amount <= limit.minor_units());
                    prop_assert_eq!(budget.daily_remaining, Some(m(limit.minor_units() - spent - amount)));
                }
                if let Some(max) = rules.max_transactions_per_hour { prop_assert!(count_last_hour < max); }
                if let (Some(t), false) = (rules.approval_above, approved) { prop_assert!(amount <= t.minor_units()); }
                if let Some(limit) = rules.monthly_limit {
                    prop_assert!(spent + earlier_this_month + amount <= limit.minor_units());
                }
                prop_assert!(level_allows(&agent, amount), "the agent's budget is exceeded");
                prop_assert!(level_allows(&owner, amount), "the owner's budget is exceeded");
                if let (Some((l, u)), Some(left)) = (&agent, budget.agent) {
                    prop_assert_eq!(
                        left.daily_remaining,
                        l.daily_limit.map(|x| m(x.minor_units() - u.spent_today.minor_units() - amount))
                    );
                }
            }
            Decision::Deny { rule, level: Level::Agent, .. } => {
                prop_assert!(!level_allows(&agent, amount), "the agent's budget denied {rule} without being exceeded");
            }
            Decision::Deny { rule, level: Level::Owner, .. } => {
                prop_assert!(level_allows(&agent, amount), "the owner's level was checked before the agent's");
                prop_assert!(!level_allows(&owner, amount), "the owner's budget denied {rule} without being exceeded");
            }
            Decision::Deny { rule, level: Level::Wallet, .. } => {
                let violated = match rule {
                    Rule::BlockedDestination => blocked(&rules, &to),
                    Rule::AllowedDestinations => rules.allowed_destinations.as_ref().is_some_and(|a| !a.contains(&to)),
                    Rule::MaxPerTransaction => rules.max_per_transaction.is_some_and(|x| amount > x.minor_units()),
                    Rule::MaxTransactionsPerHour => rules.max_transactions_per_hour.is_some_and(|x| count_last_hour >= x),
                    Rule::DailyLimit => rules.daily_limit.is_some_and(|x| spent + amount > x.minor_units()),
                    Rule::MonthlyLimit => rules.monthly_limit.is_some_and(|x| spent + earlier_this_month + amount > x.minor_units()),
                    Rule::ApprovalAbove => false,
                };
                prop_assert!(violated, "denied by {rule} without violating it");
            }
            Decision::NeedsApproval { rule, .. } => {
                prop_assert!(level_allows(&agent, amount) && level_allows(&owner, amount));
                prop_assert_eq!(*rule, Rule::ApprovalAbove);
                prop_assert!(!approved);
                prop_assert!(amount <= balance);
                prop_assert!(rules.approval_above.is_some_and(|t| amount > t.minor_units()));
            }
            Decision::InsufficientFunds { .. } => {
                prop_assert!(amount > balance);
                prop_assert!(level_allows(&agent, amount) && level_allows(&owner, amount), "limits are checked before funds");
            }
        }
    }

    #[test]
    fn an_unrestricted_policy_only_checks_funds(balance in 0_i64..i64::MAX, amount in 1_i64..i64::MAX) {
        let to = shop();
        let d = evaluate(&PolicyRules::default(), m(balance), &Usage::default(), &spend(amount, &to));
        prop_assert_eq!(matches!(d, Decision::Allow { .. }), amount <= balance);
    }

    #[test]
    fn approving_never_turns_an_allow_into_something_else(
        rules in arb_rules(), balance in 0_i64..3_000, amount in 1_i64..3_000, spent in 0_i64..3_000,
    ) {
        let to = shop();
        let usage = Usage { spent_today: m(spent), ..Default::default() };
        let plain = evaluate(&rules, m(balance), &usage, &spend(amount, &to));
        let approved = evaluate(&rules, m(balance), &usage, &SpendRequest { approved: true, ..spend(amount, &to) });
        if matches!(plain, Decision::Allow { .. } | Decision::NeedsApproval { .. }) {
            prop_assert!(matches!(approved, Decision::Allow { .. }), "{approved:?}");
        } else {
            prop_assert_eq!(plain, approved);
        }
    }
}
