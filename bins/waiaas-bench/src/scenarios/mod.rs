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
    };
    services
        .transfer(&holder.principal(), req, &holder.audit())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
