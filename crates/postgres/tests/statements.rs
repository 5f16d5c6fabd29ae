//! The statements a transfer issues are exactly `sql::TRANSFER_STATEMENTS`, the list the
//! benchmark turns into its pgbench baseline: the two can never drift apart.
//!
//! This is a test binary of its own: it captures sqlx's query events with a thread-local
//! tracing subscriber, and other tests running on other threads of the same process (with no
//! subscriber) made those events vanish now and then.

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use waiaas_domain::ports::{SpendCommand, TransactionRepository as _};
use waiaas_domain::{AuditContext, Counterparty, Money, TransactionId};
use waiaas_postgres::posting::sql;
use waiaas_testkit::{Fixture, TestDb, services};

#[derive(Default)]
struct Statement {
    summary: String,
    full: String,
}

impl Visit for Statement {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.full = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" && self.summary.is_empty() {
            self.summary = format!("{value:?}").trim_matches('"').to_owned();
        }
    }
}

struct Capture(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            let mut s = Statement::default();
            event.record(&mut s);
            let text = if s.full.trim().is_empty() {
                s.summary
            } else {
                s.full.trim().to_owned()
            };
            self.0.lock().unwrap().push(text);
        }
    }
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn a_transfer_issues_exactly_the_statements_the_pgbench_baseline_runs() {
    let db = TestDb::new().await;
    let pg = db.postgres();
    let world = Fixture::world(&services(&pg)).await;
    let from = world.wallet("USD", 1_000).await.id;
    let to = world.wallet("USD", 0).await.id;
    let cmd = SpendCommand {
        transaction_id: TransactionId::new(),
        from_wallet_id: from,
        to: Counterparty::Wallet(to),
        amount: Money::new(10).unwrap(),
        agent_id: world.agent_id,
        owner_id: world.owner_id,
        memo: None,
        metadata: serde_json::json!({}),
        idempotency: None,
        mandate_id: None,
        now: chrono::Utc::now(),
        audit: AuditContext::system(),
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Capture(seen.clone()));
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        pg.post_spend(&cmd).await.unwrap();
    }
    let issued: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| normalise(s))
        .filter(|s| !matches!(s.as_str(), "BEGIN" | "COMMIT" | "ROLLBACK"))
        // What a new connection of the pool says once (the tenant it acts for, and whether
        // its role is subject to row-level security), not the transfer.
        .filter(|s| !s.starts_with("SELECT set_config('waiaas.tenant'"))
        .collect();
    let expected: Vec<String> = sql::TRANSFER_STATEMENTS
        .iter()
        .map(|s| normalise(s))
        .collect();
    assert_eq!(issued, expected);
}
