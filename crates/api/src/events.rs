//! The events of a wallet's stream: the `data` of an SSE event, the `event` of a WebSocket
//! message (docs/api.md, "Live events").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One event of a wallet: `{"id", "type", "created_at", "wallet_id", <subject>}`, the
/// subject being `transaction` (holds included), `policy` or `mandate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalletEvent {
    /// Its place in the stream: increasing, never reused. Resume after it.
    pub id: i64,
    /// Its type, e.g. `transaction.completed`, `transaction.pending_approval`, `hold.placed`,
    /// `policy.updated`, `mandate.created`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the change was made.
    pub created_at: DateTime<Utc>,
    /// The wallet of the stream.
    pub wallet_id: Uuid,
    /// The transaction (or hold) as the change left it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<EventTransaction>,
    /// The policy as set: `{wallet_id, rules, version, updated_at}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
    /// The mandate as created or revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mandate: Option<serde_json::Value>,
}

/// A transaction as an event carries it: the domain's record (amounts in minor units).
/// The fields every transaction has are typed; the others (`initiated_by`, `budget`,
/// `hold`, `decision`, …) are kept as they came in `rest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTransaction {
    /// Identity.
    pub id: Uuid,
    /// `deposit`, `transfer`, `payment`, `sweep` or `hold`.
    pub kind: String,
    /// Where it stands, e.g. `completed` or `pending_approval`.
    pub status: String,
    /// The asset moved.
    pub asset: String,
    /// Minor units.
    pub amount: i64,
    /// The paying wallet (`null` for a deposit).
    pub from_wallet_id: Option<Uuid>,
    /// The receiving wallet (`null` for a payment).
    pub to_wallet_id: Option<Uuid>,
    /// The external destination of a payment.
    pub destination: Option<String>,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
    /// Every other field of the record.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}
