//! Fixtures: the services wired to PostgreSQL, and a small world of owner, agent and wallets.

use std::sync::Arc;

use waiaas_cache::{LocalEventBus, Relay, RelayConfig};
use waiaas_domain::ports::{PostingOutcome, SystemClock};
use waiaas_domain::services::{CaptureRequest, DepositRequest, HoldRequest, TransferRequest};
use waiaas_domain::{
    AgentId, AuditContext, OwnerId, Ports, Principal, ServiceSettings, Services, TransactionId,
    Wallet, WalletId,
};
use waiaas_postgres::Postgres;

/// The services over a PostgreSQL adapter, with an events relay over an in-process event bus
/// (not running: nothing is placed or fanned out unless a test drives it) and the system
/// clock (no cache: the PostgreSQL behaviour on its own).
#[must_use]
pub fn services(pg: &Postgres) -> Services {
    let pg = Arc::new(pg.clone());
    let relay = Arc::new(Relay::new(
        pg.clone(),
        Arc::new(LocalEventBus::default()),
        RelayConfig::default(),
    ));
    Services::new(
        Ports {
            owners: pg.clone(),
            agents: pg.clone(),
            wallets: pg.clone(),
            policies: pg.clone(),
            transactions: pg.clone(),
            sessions: pg.clone(),
            audit: pg.clone(),
            notifications: pg.clone(),
            feed: relay,
            webhooks: pg,
            clock: Arc::new(SystemClock),
        },
        ServiceSettings::default(),
    )
}

/// An owner with one agent.
#[derive(Debug, Clone)]
pub struct World {
    /// The services.
    pub services: Services,
    /// The owner.
    pub owner_id: OwnerId,
    /// Its agent.
    pub agent_id: AgentId,
    /// The owner's API key.
    pub owner_key: String,
}

/// Short-hand for building worlds.
#[derive(Debug)]
pub struct Fixture;

impl Fixture {
    /// Creates an owner and an agent.
    ///
    /// # Panics
    /// When storage fails.
    pub async fn world(services: &Services) -> World {
        let ctx = AuditContext::system();
        let (owner, key) = services
            .create_owner("test owner", &ctx)
            .await
            .expect("owner");
        let agent = services
            .create_agent(owner.id, "test agent", &ctx)
            .await
            .expect("agent");
        World {
            services: services.clone(),
            owner_id: owner.id,
            agent_id: agent.id,
            owner_key: key.expose().to_owned(),
        }
    }
}

impl World {
    /// The owner as a principal.
    #[must_use]
    pub const fn owner(&self) -> Principal {
        Principal::Owner {
            owner_id: self.owner_id,
        }
    }

    /// The agent as a principal.
    #[must_use]
    pub const fn agent(&self) -> Principal {
        Principal::Agent {
            agent_id: self.agent_id,
            owner_id: self.owner_id,
        }
    }

    /// The owner's audit context.
    #[must_use]
    pub const fn owner_ctx(&self) -> AuditContext {
        AuditContext::of(waiaas_domain::Actor::Owner(self.owner_id))
    }

    /// The agent's audit context.
    #[must_use]
    pub const fn agent_ctx(&self) -> AuditContext {
        AuditContext::of(waiaas_domain::Actor::Agent(self.agent_id))
    }

    /// Opens a wallet of `asset` for the agent and deposits `balance` into it.
    ///
    /// # Panics
    /// When storage fails.
    pub async fn wallet(&self, asset: &str, balance: i64) -> Wallet {
        let w = self
            .services
            .create_wallet(&self.owner(), self.agent_id, asset, None, &self.owner_ctx())
            .await
            .expect("wallet");
        if balance > 0 {
            self.deposit(w.id, balance).await;
        }
        w
    }

    /// Deposits into a wallet of the owner.
    ///
    /// # Panics
    /// When the deposit fails.
    pub async fn deposit(&self, wallet_id: WalletId, amount: i64) -> PostingOutcome {
        self.services
            .deposit(
                &self.owner(),
                DepositRequest {
                    wallet_id,
                    amount,
                    memo: None,
                    metadata: None,
                    idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
                },
                &self.owner_ctx(),
            )
            .await
            .expect("deposit")
    }

    /// The agent moves `amount` from one of its wallets to another.
    ///
    /// # Panics
    /// When the posting fails (a denial or a hold is an outcome, not a failure).
    pub async fn spend(&self, from: WalletId, to: WalletId, amount: i64) -> PostingOutcome {
        self.services
            .transfer(
                &self.agent(),
                Self::transfer_request(from, to, amount),
                &self.agent_ctx(),
            )
            .await
            .expect("transfer")
    }

    /// The agent places a hold of `amount` on `from` for a transfer to `to`, for an hour.
    ///
    /// # Panics
    /// When the posting fails (a denial or a wait for approval is an outcome).
    pub async fn hold(&self, from: WalletId, to: WalletId, amount: i64) -> PostingOutcome {
        self.services
            .create_hold(
                &self.agent(),
                HoldRequest {
                    spend: Self::transfer_request(from, to, amount),
                    expires_in_s: None,
                },
                &self.agent_ctx(),
            )
            .await
            .expect("hold")
    }

    /// The agent captures `amount` of a hold (all of it when `None`), with a fresh key.
    ///
    /// # Errors
    /// What the capture was refused with.
    pub async fn capture(
        &self,
        hold: TransactionId,
        amount: Option<i64>,
    ) -> Result<PostingOutcome, waiaas_domain::PostingError> {
        self.services
            .capture_hold(
                &self.agent(),
                CaptureRequest {
                    hold_id: hold,
                    amount,
                    idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
                },
                &self.agent_ctx(),
            )
            .await
    }

    /// The owner replaces a wallet's rules.
    ///
    /// # Panics
    /// When storage fails.
    pub async fn set_rules(
        &self,
        wallet_id: WalletId,
        rules: waiaas_domain::PolicyRules,
    ) -> waiaas_domain::Policy {
        self.services
            .set_policy(&self.owner(), wallet_id, rules, &self.owner_ctx())
            .await
            .expect("policy")
    }

    /// A transfer request between two wallets, with a fresh idempotency key.
    #[must_use]
    pub fn transfer_request(from: WalletId, to: WalletId, amount: i64) -> TransferRequest {
        TransferRequest {
            from_wallet_id: from,
            to_wallet_id: Some(to),
            destination: None,
            amount,
            memo: None,
            metadata: None,
            idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
            mandate_id: None,
        }
    }
}
