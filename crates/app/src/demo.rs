//! `waiaas demo`: an owner, two agents with wallets, policies and a budget, and a few days of
//! activity behind them (deposits, payments to shops, transfers between the agents, one
//! payment refused by a policy and one waiting for the owner's approval), so that a newcomer
//! sees the API with data in it. Prints the keys (shown once) and what to try.
//!
//! The activity goes through the same services and PostgreSQL adapter as requests do, on a
//! clock that walks through the past days, so daily spend, audit rows, events and the
//! hash chain are what real traffic on those days would have left.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use waiaas_domain::ports::Clock;
use waiaas_domain::services::{DepositRequest, TransferRequest};
use waiaas_domain::{
    Actor, AuditContext, Money, PolicyRules, Principal, ServiceSettings, Services, WalletId,
};

use crate::settings::Settings;

/// A clock the demo moves forward through the past days.
#[derive(Debug)]
struct DemoClock(AtomicI64);

impl DemoClock {
    fn set(&self, at: DateTime<Utc>) {
        self.0.store(at.timestamp_micros(), Ordering::SeqCst);
    }
}

impl Clock for DemoClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0.load(Ordering::SeqCst)).unwrap_or_else(Utc::now)
    }
}

/// A small deterministic sequence (the same demo every time).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, low: i64, high: i64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let span = u64::try_from(high - low + 1).unwrap_or(1);
        low + i64::try_from((self.0 >> 33) % span).unwrap_or(0)
    }
}

fn money(units: i64) -> anyhow::Result<Money> {
    Money::new(units).map_err(|e| anyhow::anyhow!("{e}"))
}

fn payment(from: WalletId, to: &str, amount: i64, memo: &str) -> TransferRequest {
    TransferRequest {
        from_wallet_id: from,
        to_wallet_id: None,
        destination: Some(to.to_owned()),
        amount,
        memo: Some(memo.to_owned()),
        metadata: None,
        idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
        mandate_id: None,
    }
}

/// What the demo made.
#[derive(Debug)]
pub struct DemoReport {
    /// Transactions posted (completed, refused and waiting).
    pub transactions: usize,
    /// The owner's id.
    pub owner_id: String,
    /// The owner's API key (shown once).
    pub owner_key: String,
    /// Each agent's name, id and API key.
    pub agents: Vec<(String, String, String)>,
    /// The transaction waiting for the owner's approval.
    pub pending: String,
}

/// Creates the demo data in the database the settings name (created and migrated if
/// needed), over `days` past days; prints the report.
///
/// # Errors
/// When PostgreSQL cannot be reached, or a step the demo relies on is refused.
pub async fn demo(settings: &Settings, days: u32) -> anyhow::Result<DemoReport> {
    crate::serve::prepare_database(settings).await?;
    let mut settings = settings.clone();
    // Demo data lives in PostgreSQL; caches fill when the service reads it.
    settings.redis.enabled = false;
    let app = crate::wiring::build(&settings).await?;
    app.background.stop();
    let days = i64::from(days.clamp(1, 30));
    let clock = Arc::new(DemoClock(AtomicI64::new(0)));
    let start = (Utc::now() - chrono::Duration::days(days))
        .date_naive()
        .and_hms_opt(8, 0, 0)
        .context("8 o'clock")?
        .and_utc();
    clock.set(start);
    let mut ports = app.services.ports().clone();
    ports.clock = clock.clone();
    let services = Services::new(
        ports,
        ServiceSettings {
            session_ttl: Duration::from_secs(settings.auth.session_ttl_s),
            webhook_private_networks: settings.webhooks.allow_private_networks,
        },
    );
    let report = activity(&services, &clock, start, days).await;
    app.shutdown().await;
    report
}

async fn activity(
    services: &Services,
    clock: &DemoClock,
    start: DateTime<Utc>,
    days: i64,
) -> anyhow::Result<DemoReport> {
    let fail = |what: &'static str| move |e: String| anyhow::anyhow!("{what}: {e}");
    let system = AuditContext::system();
    let (owner, owner_key) = services
        .create_owner("Demo Company", &system)
        .await
        .map_err(|e| fail("the owner")(e.to_string()))?;
    let principal = Principal::Owner { owner_id: owner.id };
    let as_owner = AuditContext::of(Actor::Owner(owner.id));
    let mut agents = Vec::new();
    let mut wallets = Vec::new();
    for (name, deposit) in [("shopper", 150_000), ("researcher", 300_000)] {
        let agent = services
            .create_agent(owner.id, name, &as_owner)
            .await
            .map_err(|e| fail("an agent")(e.to_string()))?;
        let (_, key) = services
            .create_agent_key(owner.id, agent.id, &as_owner)
            .await
            .map_err(|e| fail("an agent key")(e.to_string()))?;
        let wallet = services
            .create_wallet(&principal, agent.id, "USD", Some("main"), &as_owner)
            .await
            .map_err(|e| fail("a wallet")(e.to_string()))?;
        services
            .deposit(
                &principal,
                DepositRequest {
                    wallet_id: wallet.id,
                    amount: deposit,
                    memo: Some("monthly allowance".to_owned()),
                    metadata: None,
                    idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
                },
                &as_owner,
            )
            .await
            .map_err(|e| fail("a deposit")(e.to_string()))?;
        agents.push((name.to_owned(), agent.id, key.expose().to_owned()));
        wallets.push(wallet.id);
    }
    let (shopper, researcher) = (wallets[0], wallets[1]);
    services
        .set_policy(
            &principal,
            shopper,
            PolicyRules {
                daily_limit: Some(money(25_000)?),
                approval_above: Some(money(12_000)?),
                blocked_destinations: [waiaas_domain::Counterparty::parse("casino-royale")
                    .map_err(|e| fail("a destination")(e.to_string()))?]
                .into(),
                ..PolicyRules::default()
            },
            &as_owner,
        )
        .await
        .map_err(|e| fail("a policy")(e.to_string()))?;
    services
        .set_policy(
            &principal,
            researcher,
            PolicyRules {
                max_per_transaction: Some(money(10_000)?),
                ..PolicyRules::default()
            },
            &as_owner,
        )
        .await
        .map_err(|e| fail("a policy")(e.to_string()))?;

    let mut dice = Dice(7);
    let mut transactions = 2;
    let agent_of = |i: usize| Principal::Agent {
        agent_id: agents[i].1,
        owner_id: owner.id,
    };
    let ctx_of = |i: usize| AuditContext::of(Actor::Agent(agents[i].1));
    let shops = ["acme-books", "paper-and-ink", "coffee-roasters"];
    let clouds = ["cloud-gpu", "dataset-market"];
    for day in 0..days {
        for hour in [9, 11, 14, 16] {
            let at = start
                + chrono::Duration::days(day)
                + chrono::Duration::hours(hour - 8)
                + chrono::Duration::minutes(dice.roll(0, 59));
            clock.set(at);
            let shop = shops[usize::try_from(dice.roll(0, 2)).unwrap_or(0)];
            let r = services
                .transfer(
                    &agent_of(0),
                    payment(shopper, shop, dice.roll(500, 4_000), "supplies"),
                    &ctx_of(0),
                )
                .await;
            transactions += usize::from(r.is_ok());
            let cloud = clouds[usize::try_from(dice.roll(0, 1)).unwrap_or(0)];
            let r = services
                .transfer(
                    &agent_of(1),
                    payment(researcher, cloud, dice.roll(2_000, 9_000), "compute"),
                    &ctx_of(1),
                )
                .await;
            transactions += usize::from(r.is_ok());
        }
        // The researcher tops the shopper up once a day.
        let r = services
            .transfer(
                &agent_of(1),
                TransferRequest {
                    from_wallet_id: researcher,
                    to_wallet_id: Some(shopper),
                    destination: None,
                    amount: 5_000,
                    memo: Some("top-up".to_owned()),
                    metadata: None,
                    idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
                    mandate_id: None,
                },
                &ctx_of(1),
            )
            .await;
        transactions += usize::from(r.is_ok());
    }
    // Today: one payment the policy refuses, and one that waits for the owner.
    clock.set(Utc::now() - chrono::Duration::minutes(5));
    let refused = services
        .transfer(
            &agent_of(0),
            payment(shopper, "casino-royale", 2_000, "a bet"),
            &ctx_of(0),
        )
        .await;
    transactions += usize::from(refused.is_ok());
    clock.set(Utc::now());
    let waiting = services
        .transfer(
            &agent_of(0),
            payment(shopper, "acme-books", 14_000, "a rare first edition"),
            &ctx_of(0),
        )
        .await
        .map_err(|e| fail("the payment waiting for approval")(e.to_string()))?;
    transactions += 1;
    Ok(DemoReport {
        transactions,
        owner_id: owner.id.to_string(),
        owner_key: owner_key.expose().to_owned(),
        agents: agents
            .into_iter()
            .map(|(name, id, key)| (name, id.to_string(), key))
            .collect(),
        pending: waiting.transaction.id.to_string(),
    })
}

impl std::fmt::Display for DemoReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "demo data created: {} transactions", self.transactions)?;
        writeln!(f, "owner_id: {}", self.owner_id)?;
        writeln!(f, "owner api_key: {}", self.owner_key)?;
        for (name, id, key) in &self.agents {
            writeln!(f, "agent {name}: id {id}, api_key {key}")?;
        }
        writeln!(f, "waiting for your approval: transaction {}", self.pending)?;
        writeln!(f, "(the keys are shown once; store them now)")
    }
}
