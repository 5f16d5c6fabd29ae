//! Events: what changed, as the transactional outbox recorded it. Every change of a
//! transaction (a posting, a decision, a hold placed, captured, voided or expired, an approval
//! that expired) writes one `events` row in the same PostgreSQL transaction, so an event
//! exists exactly when its change committed. The relay gives each committed event its place
//! in the stream (`id`, increasing in the order the relay saw them committed, with no event
//! ever placed before one already read), and fans them out to live streams; a client that
//! reconnects asks for everything after the last `id` it saw.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::WalletId;
use crate::model::Transaction;

/// One event of the outbox, as streams and webhooks carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Its place in the stream: increasing, never reused (numbers may be skipped).
    pub id: i64,
    /// `transaction.<status>` (`completed`, `pending_approval`, `denied`, `failed`,
    /// `rejected`, `expired`) or `hold.<placed|captured|voided|expired|pending_approval|
    /// denied|failed|rejected>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the change was made.
    pub created_at: DateTime<Utc>,
    /// The transaction as that change left it.
    pub transaction: Transaction,
}

impl Event {
    /// Whether the event concerns `wallet`.
    #[must_use]
    pub fn touches(&self, wallet: WalletId) -> bool {
        self.transaction.from_wallet_id == Some(wallet)
            || self.transaction.to_wallet_id == Some(wallet)
    }
}
