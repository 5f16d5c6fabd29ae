//! An owner's approval bot: it listens to a wallet's events and approves every transfer or
//! hold that waits for approval up to a threshold; larger ones are left for a human. After a
//! dropped connection the stream resumes by itself; after a restart the bot resumes from the
//! event id it printed last (`WAIAAS_AFTER`).
//!
//! ```sh
//! WAIAAS_URL=http://127.0.0.1:8080 WAIAAS_OWNER_KEY=wak_… WAIAAS_WALLET_ID=0193… \
//!   WAIAAS_APPROVE_UP_TO=5000 cargo run -p waiaas-client --example approval_bot
//! ```

use futures::StreamExt as _;
use waiaas_client::{Client, ErrorCode};

fn env(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("set {name}").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let owner = Client::new(env("WAIAAS_URL")?, env("WAIAAS_OWNER_KEY")?)?;
    let wallet_id = env("WAIAAS_WALLET_ID")?.parse()?;
    let limit: i64 = env("WAIAAS_APPROVE_UP_TO")?.parse()?;
    let after = std::env::var("WAIAAS_AFTER")
        .ok()
        .map(|s| s.parse())
        .transpose()?;

    let mut events = Box::pin(owner.wallet_events(wallet_id, after));
    while let Some(event) = events.next().await {
        let event = event?;
        let waiting = matches!(
            event.kind.as_str(),
            "transaction.pending_approval" | "hold.pending_approval"
        );
        let Some(tx) = event.transaction.filter(|_| waiting) else {
            continue;
        };
        if tx.amount > limit {
            println!(
                "event {}: {} of {} waits for a human",
                event.id, tx.id, tx.amount
            );
            continue;
        }
        match owner.approve(tx.id).await {
            Ok(decided) => println!(
                "event {}: approved {} -> {}",
                event.id, tx.id, decided.status
            ),
            // Someone decided first, or it waited too long: nothing left to do.
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::NotPending | ErrorCode::ApprovalExpired)
                ) =>
            {
                println!("event {}: {} was already decided ({e})", event.id, tx.id);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
