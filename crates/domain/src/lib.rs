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

pub mod errors;
pub mod events;
pub mod ids;
pub mod model;
pub mod money;
pub mod notifications;
pub mod policy;
pub mod ports;
pub mod services;
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
