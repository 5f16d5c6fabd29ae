//! The services: the use cases of the platform, written against the ports only. Each method
//! validates its input into domain types, checks who may do what, and calls the ports.

pub mod auth;
mod budgets;
mod holds;
mod mandates;
mod owners;
mod payments;
#[cfg(test)]
mod tests;
mod wallets;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use crate::errors::AccessError;
use crate::ids::WalletId;
use crate::model::{Principal, WalletOwnership};
use crate::ports::{
    AgentRepository, AuditLog, Clock, EventFeed, NotificationRepository, OwnerRepository,
    PolicyRepository, SessionRepository, TransactionRepository, WalletRepository,
    WebhookRepository,
};

pub use budgets::MAX_BUDGET_ASSETS;
pub use holds::{CaptureRequest, DEFAULT_HOLD_LIFETIME, HoldRequest, MAX_HOLD_LIFETIME};
pub use mandates::{MAX_MANDATE_LIFETIME_DAYS, MAX_MANDATE_USES, MandateRequest};
pub use payments::{DepositRequest, SweepRequest, TransferRequest};
pub use webhooks::{MAX_WEBHOOKS, WebhookRequest};

/// The ports the services run on.
#[derive(Clone)]
pub struct Ports {
    /// Owners.
    pub owners: Arc<dyn OwnerRepository>,
    /// Agents and their keys.
    pub agents: Arc<dyn AgentRepository>,
    /// Wallets.
    pub wallets: Arc<dyn WalletRepository>,
    /// Policies.
    pub policies: Arc<dyn PolicyRepository>,
    /// Transactions.
    pub transactions: Arc<dyn TransactionRepository>,
    /// Keys and sessions.
    pub sessions: Arc<dyn SessionRepository>,
    /// The audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Notifications.
    pub notifications: Arc<dyn NotificationRepository>,
    /// The outbox's live feed and stored events.
    pub feed: Arc<dyn EventFeed>,
    /// Webhook endpoints and their deliveries.
    pub webhooks: Arc<dyn WebhookRepository>,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// Settings of the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSettings {
    /// How long a session token lives.
    pub session_ttl: Duration,
    /// Whether webhook URLs may point at private networks (and use `http://`).
    pub webhook_private_networks: bool,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(3600),
            webhook_private_networks: false,
        }
    }
}

/// The platform's use cases.
#[derive(Debug, Clone)]
pub struct Services {
    ports: Ports,
    settings: ServiceSettings,
}

/// The most items one page may hold.
pub const MAX_PAGE: u32 = 200;
/// The page size when the client gives none.
pub const DEFAULT_PAGE: u32 = 50;

impl Services {
    /// Wires the services to their ports.
    #[must_use]
    pub const fn new(ports: Ports, settings: ServiceSettings) -> Self {
        Self { ports, settings }
    }

    /// The ports, for adapters that need one directly (the HTTP layer's event stream).
    #[must_use]
    pub const fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The wallet's ownership if the principal may see it; `NotFound` otherwise, so a caller
    /// never learns that another tenant's wallet exists.
    async fn visible_wallet(
        &self,
        principal: &Principal,
        wallet_id: WalletId,
    ) -> Result<WalletOwnership, AccessError> {
        match self.ports.wallets.ownership(wallet_id).await? {
            Some(o) if principal.can_see(&o) => Ok(o),
            _ => Err(AccessError::NotFound),
        }
    }

    /// Wakes the relay for what a posting wrote (its events were committed with it); a
    /// replay wrote nothing new.
    fn announce(&self, outcome: &crate::ports::PostingOutcome) {
        if !outcome.replayed {
            self.ports.feed.committed();
        }
    }
}

fn page_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}
