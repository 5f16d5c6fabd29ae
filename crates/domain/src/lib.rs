//! # waiaas-domain
//!
//! The domain of WAIaaS, a wallet service for AI agents: owners register agents, agents hold
//! wallets, owners put policies on wallets, and agents move money by transactions that the
//! policy engine allows, holds for approval or denies.
//!
//! This crate does no I/O. It holds the validated value types ([`Money`], [`AssetCode`],
//! [`Destination`], the ids), the entities, the pure policy engine ([`policy::evaluate`]),
//! the ports the adapters implement ([`ports`]) and the services that run the use cases over
//! those ports ([`Services`]). Embed it with your own adapters, or use the PostgreSQL and
//! Redis adapters of the `waiaas-postgres` and `waiaas-redis` crates.
//!
//! Enable the `mocks` feature for `mockall` mocks of every port.
//!
//! The policy engine decides a spend from the rules, the balance and what was spent, with no
//! I/O — the same function the PostgreSQL adapter runs under the wallet's lock:
//!
//! ```
//! use waiaas_domain::policy::{Decision, PolicyRules, Rule, SpendRequest, Usage, evaluate};
//! use waiaas_domain::{Counterparty, Money};
//!
//! let rules = PolicyRules {
//!     daily_limit: Some(Money::new(1_000)?),
//!     approval_above: Some(Money::new(300)?),
//!     ..PolicyRules::default()
//! };
//! let shop = Counterparty::parse("acme-books")?;
//! let spend = |amount| SpendRequest { amount, counterparty: &shop, approved: false };
//! let today = Usage { spent_today: Money::new(800)?, ..Usage::default() };
//! let balance = Money::new(5_000)?;
//!
//! // 150 fits what is left of today's 1,000 and needs no approval.
//! assert!(matches!(evaluate(&rules, balance, &today, &spend(Money::new(150)?)), Decision::Allow { .. }));
//! // 250 would pass the daily limit: refused, naming the rule.
//! assert!(matches!(
//!     evaluate(&rules, balance, &today, &spend(Money::new(250)?)),
//!     Decision::Deny { rule: Rule::DailyLimit, .. }
//! ));
//! // On a fresh day, 400 is above the approval threshold: held for the owner.
//! assert!(matches!(
//!     evaluate(&rules, balance, &Usage::default(), &spend(Money::new(400)?)),
//!     Decision::NeedsApproval { rule: Rule::ApprovalAbove, .. }
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod errors;
pub mod events;
pub mod freshness;
pub mod ids;
pub mod model;
pub mod money;
pub mod notifications;
pub mod policy;
pub mod ports;
pub mod services;
pub mod tenant;
pub mod text;
pub mod values;
pub mod webhooks;

pub use errors::*;
pub use events::{Event, Subject};
pub use ids::*;
pub use model::*;
pub use money::{Money, MoneyError};
pub use policy::{BudgetLimits, Decision, Level, Policy, PolicyRules, Rule};
pub use services::auth::CredentialKind;
pub use services::{Ports, ServiceSettings, Services};
pub use values::*;
