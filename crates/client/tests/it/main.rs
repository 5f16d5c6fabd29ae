//! The client against the real service: each test starts an instance on its own database
//! and Redis key prefix (the end-to-end harness) over a real socket, and drives it only
//! through `waiaas-client`.

mod events;
mod holds;
mod idempotency;
mod walkthrough;

use std::time::Duration;

use futures::{Stream, StreamExt as _};
use uuid::Uuid;
use waiaas_client::api::{TransferBody, WalletDto};
use waiaas_client::{Client, WalletEvent};
use waiaas_tests::{BOOTSTRAP, TestApp};

/// An owner with an agent holding two USD wallets, the first funded.
struct World {
    owner: Client,
    agent: Client,
    agent_key: String,
    agent_id: Uuid,
    wallet: WalletDto,
    payee: WalletDto,
}

impl World {
    /// Registers the owner with the bootstrap token, then everything else as the owner.
    async fn new(app: &TestApp, funds: i64) -> Self {
        let bootstrap = Client::new(&app.base, BOOTSTRAP).unwrap();
        let owner = bootstrap.create_owner("Acme").await.unwrap();
        let owner = bootstrap.with_token(owner.api_key);
        let agent = owner.create_agent("buyer").await.unwrap();
        let key = owner.create_agent_key(agent.id, None).await.unwrap();
        let wallet = owner
            .create_wallet(agent.id, "USD", Some("ops"))
            .await
            .unwrap();
        let payee = owner.create_wallet(agent.id, "USD", None).await.unwrap();
        owner
            .deposit(wallet.id, funds, Some("funding"))
            .await
            .unwrap();
        Self {
            agent: owner.with_token(&key.api_key),
            agent_key: key.api_key,
            owner,
            agent_id: agent.id,
            wallet,
            payee,
        }
    }
}

/// A transfer of `amount` to `to`.
fn pay(to: Uuid, amount: i64) -> TransferBody {
    TransferBody {
        amount,
        to_wallet_id: Some(to),
        destination: None,
        memo: None,
        metadata: None,
        mandate_id: None,
    }
}

/// The next event of `events` that `wanted` accepts (the others are skipped), within 15 s.
async fn next_event<S>(events: &mut S, wanted: impl Fn(&WalletEvent) -> bool) -> WalletEvent
where
    S: Stream<Item = Result<WalletEvent, waiaas_client::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("the event came in time")
            .expect("the stream goes on")
            .expect("an event");
        if wanted(&event) {
            return event;
        }
    }
}

/// Whether `event` is of `kind` and about transaction `id`.
fn about(event: &WalletEvent, kind: &str, id: Uuid) -> bool {
    event.kind == kind && event.transaction.as_ref().is_some_and(|t| t.id == id)
}
