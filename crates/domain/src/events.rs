//! Events: what changed, as the transactional outbox recorded it. Every change of a
//! transaction (a posting, a decision, a hold placed, captured, voided or expired, an approval
//! that expired), of an agent, an API key, a session's revocation, a wallet's policy, a budget
//! or a mandate writes one `events` row in the same PostgreSQL transaction, so an event exists
//! exactly when its change committed. The relay gives each committed event its place in the
//! stream (`id`, increasing in the order the relay saw them committed, with no event ever
//! placed before one already read), and fans them out to live streams and webhooks; a client
//! that reconnects asks for everything after the last `id` it saw.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{OwnerId, WalletId};
use crate::model::Transaction;

/// One event of the outbox, as streams and webhooks carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Its place in the stream: increasing, never reused (numbers may be skipped).
    pub id: i64,
    /// `transaction.<status>` (`completed`, `pending_approval`, `denied`, `failed`,
    /// `rejected`, `expired`), `hold.<placed|captured|voided|expired|pending_approval|
    /// denied|failed|rejected>`, `agent.<created|updated|suspended|activated|deleted>`,
    /// `api_key.<created|revoked>`, `session.revoked`, `policy.updated`, `budget.updated`,
    /// `mandate.<created|revoked>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the change was made.
    pub created_at: DateTime<Utc>,
    /// The tenant it belongs to.
    pub owner_id: OwnerId,
    /// What changed, as the change left it.
    pub subject: Subject,
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A transaction (transfer, payment, deposit, hold) as the change left it.
    Transaction(Box<Transaction>),
    /// Another record: an agent, an API key, a session, a wallet's policy, a budget or a
    /// mandate, as the API shows it (never a credential's hash).
    Record {
        /// `agent`, `api_key`, `session`, `policy`, `budget` or `mandate`.
        name: String,
        /// The wallet it concerns (a policy's or a mandate's), if any.
        wallet_id: Option<WalletId>,
        /// The record.
        data: serde_json::Value,
    },
}

impl Event {
    /// The transaction the event is about, if it is about one.
    #[must_use]
    pub fn transaction(&self) -> Option<&Transaction> {
        match &self.subject {
            Subject::Transaction(t) => Some(t),
            Subject::Record { .. } => None,
        }
    }

    /// Whether the event concerns `wallet`: a transaction paying from or to it, or a record
    /// of it (its policy, a mandate on it).
    #[must_use]
    pub fn touches(&self, wallet: WalletId) -> bool {
        match &self.subject {
            Subject::Transaction(t) => {
                t.from_wallet_id == Some(wallet) || t.to_wallet_id == Some(wallet)
            }
            Subject::Record { wallet_id, .. } => *wallet_id == Some(wallet),
        }
    }

    /// The key its record goes under in streams' and webhooks' data: `transaction` (holds
    /// included), or the record's name.
    #[must_use]
    pub fn subject_name(&self) -> &str {
        match &self.subject {
            Subject::Transaction(_) => "transaction",
            Subject::Record { name, .. } => name,
        }
    }

    /// The record as JSON.
    #[must_use]
    pub fn record(&self) -> serde_json::Value {
        match &self.subject {
            Subject::Transaction(t) => serde_json::to_value(t).unwrap_or_default(),
            Subject::Record { data, .. } => data.clone(),
        }
    }
}
