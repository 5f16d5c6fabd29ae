//! The benchmark scenarios. Each measures the service and, in the same run, the baseline it
//! is compared with.

pub mod growth;
pub mod http;
pub mod reads;
pub mod redis_down;
pub mod transfers;

use std::time::Duration;

use rand::Rng as _;
use waiaas_domain::services::TransferRequest;
use waiaas_domain::{Actor, AgentId, AuditContext, OwnerId, Principal, Services};

use crate::env::wallet_id;

/// How big and long the runs are.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Length of one measured run.
    pub run: Duration,
    /// Quick mode (CI): tiny sizes.
    pub quick: bool,
    /// No progress bars.
    pub quiet: bool,
}

/// The agent that holds the bench wallets.
#[derive(Debug, Clone, Copy)]
pub struct Holder {
    /// The owner.
    pub owner: OwnerId,
    /// The agent.
    pub agent: AgentId,
}

impl Holder {
    /// As a principal.
    #[must_use]
    pub const fn principal(&self) -> Principal {
        Principal::Agent {
            agent_id: self.agent,
            owner_id: self.owner,
        }
    }

    /// The audit context of its requests.
    #[must_use]
    pub const fn audit(&self) -> AuditContext {
        AuditContext::of(Actor::Agent(self.agent))
    }
}

/// One transfer of 1–100 between two distinct random wallets among `1..=wallets`, with a
/// fresh idempotency key (as the API requires).
///
/// # Errors
/// The posting's error, as text.
pub async fn random_transfer(
    services: &Services,
    holder: Holder,
    wallets: u64,
) -> Result<(), String> {
    let (a, b, amount) = {
        let mut rng = rand::rng();
        let a = rng.random_range(1..=wallets);
        let b = (a + rng.random_range(1..wallets) - 1) % wallets + 1;
        (a, b, rng.random_range(1..=100))
    };
    let req = TransferRequest {
        from_wallet_id: wallet_id(a),
        to_wallet_id: Some(wallet_id(b)),
        destination: None,
        amount,
        memo: None,
        metadata: None,
        idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
        mandate_id: None,
    };
    services
        .transfer(&holder.principal(), req, &holder.audit())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Reads every bench wallet's balance once through `services`, eight at a time, so that a
/// measured run starts with what a long-running instance holds: wallet ownership in L1 and
/// balances in L2. A fresh instance would otherwise spend its first seconds looking up
/// ownership in PostgreSQL, which is start-up cost, not the steady state being measured.
///
/// # Errors
/// The first read that fails.
pub async fn warm(services: &Services, holder: Holder, wallets: u64) -> anyhow::Result<()> {
    use futures::{StreamExt as _, TryStreamExt as _};
    let principal = holder.principal();
    futures::stream::iter(1..=wallets)
        .map(|i| {
            let principal = &principal;
            async move { services.balance(principal, wallet_id(i)).await }
        })
        .buffer_unordered(8)
        .map_err(|e| anyhow::anyhow!("warming wallet ownership: {e}"))
        .try_for_each(|_| async { Ok(()) })
        .await
}
