//! An agent pays for a ride whose price it does not know yet: it reserves an amount with a
//! hold, then captures what the ride cost; the rest goes back to the wallet.
//!
//! ```sh
//! WAIAAS_URL=http://127.0.0.1:8080 WAIAAS_AGENT_KEY=wak_… WAIAAS_WALLET_ID=0193… \
//!   cargo run -p waiaas-client --example agent_hold_capture
//! ```

use waiaas_client::api::HoldBody;
use waiaas_client::{Client, ErrorCode};

fn env(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("set {name}").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let agent = Client::new(env("WAIAAS_URL")?, env("WAIAAS_AGENT_KEY")?)?;
    let wallet_id = env("WAIAAS_WALLET_ID")?.parse()?;

    // Reserve 30.00 for the ride (the policy decides as for a payment of that amount).
    let hold = HoldBody {
        amount: 3_000,
        to_wallet_id: None,
        destination: Some("ride-co".to_owned()),
        memo: Some("ride R-1".to_owned()),
        metadata: Some(serde_json::json!({"ride": "R-1"})),
        mandate_id: None,
        expires_in_s: Some(1_800),
    };
    let hold = match agent.create_hold(wallet_id, &hold).await {
        Ok(hold) => hold,
        Err(e) if e.code() == Some(&ErrorCode::PolicyDenied) => {
            println!("the policy refused the hold: rule {:?}", e.detail("rule"));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if hold.status != "held" {
        println!(
            "hold {} is {}: the owner must approve it first",
            hold.id, hold.status
        );
        return Ok(());
    }
    let balance = agent.balance(wallet_id).await?;
    println!(
        "held {} (available {} of {})",
        hold.amount, balance.available, balance.balance
    );

    // The ride cost 21.40: capture that much; the other 8.60 is released.
    let payment = agent.capture(hold.id, Some(2_140)).await?;
    println!(
        "paid {} to {:?}: {}",
        payment.amount, payment.destination, payment.status
    );
    let balance = agent.balance(wallet_id).await?;
    println!("balance now {} (held {})", balance.balance, balance.held);
    Ok(())
}
