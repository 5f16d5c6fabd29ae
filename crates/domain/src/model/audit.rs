//! The audit trail: who changed what, from where, with the values before and after.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, AuditId, OwnerId};

/// Who performed an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// An owner, through its API key or session.
    Owner(OwnerId),
    /// An agent, through its API key or session.
    Agent(AgentId),
    /// The service itself or an operator's command (bootstrap, migrations).
    System,
}

impl Actor {
    /// The stored actor type.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Owner(_) => "owner",
            Self::Agent(_) => "agent",
            Self::System => "system",
        }
    }

    /// The stored actor id (none for the system).
    #[must_use]
    pub fn id(&self) -> Option<uuid::Uuid> {
        match self {
            Self::Owner(id) => Some(*id.as_uuid()),
            Self::Agent(id) => Some(*id.as_uuid()),
            Self::System => None,
        }
    }

    /// Rebuilds an actor from its stored type and id.
    #[must_use]
    pub fn from_db(kind: &str, id: Option<uuid::Uuid>) -> Option<Self> {
        match (kind, id) {
            ("owner", Some(id)) => Some(Self::Owner(OwnerId::from_uuid(id))),
            ("agent", Some(id)) => Some(Self::Agent(AgentId::from_uuid(id))),
            ("system", _) => Some(Self::System),
            _ => None,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id() {
            Some(id) => write!(f, "{}:{id}", self.kind()),
            None => f.write_str(self.kind()),
        }
    }
}

/// Where a mutation comes from: recorded with every audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    /// Who acts.
    pub actor: Actor,
    /// The request id of the HTTP request, if any.
    pub request_id: Option<String>,
    /// The client address, if any.
    pub ip: Option<IpAddr>,
}

impl AuditContext {
    /// A context for the service's own actions, outside any request.
    #[must_use]
    pub const fn system() -> Self {
        Self {
            actor: Actor::System,
            request_id: None,
            ip: None,
        }
    }

    /// A context for an actor outside any HTTP request.
    #[must_use]
    pub const fn of(actor: Actor) -> Self {
        Self {
            actor,
            request_id: None,
            ip: None,
        }
    }
}

/// An audit row to write in the same PostgreSQL transaction as the change it records.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// The owner whose tenant the resource belongs to.
    pub owner_id: Option<OwnerId>,
    /// What happened, e.g. `wallet.policy.set`.
    pub action: &'static str,
    /// The kind of resource, e.g. `wallet`.
    pub resource_type: &'static str,
    /// The resource's id.
    pub resource_id: String,
    /// The value before, if there was one.
    pub old_value: Option<serde_json::Value>,
    /// The value after, if there is one.
    pub new_value: Option<serde_json::Value>,
}

/// An audit row as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Identity.
    pub id: AuditId,
    /// The tenant.
    pub owner_id: Option<OwnerId>,
    /// Who acted.
    pub actor: Actor,
    /// What happened.
    pub action: String,
    /// The kind of resource.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
    /// The value before.
    pub old_value: Option<serde_json::Value>,
    /// The value after.
    pub new_value: Option<serde_json::Value>,
    /// The request it came from.
    pub request_id: Option<String>,
    /// The client address.
    pub ip: Option<IpAddr>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// The latest sealed position of the tamper-evident ledger (every transaction, ledger entry
/// and audit row, chained by SHA-256), for owners who publish or notarise it: a later
/// `waiaas verify` from this position and hash proves nothing before it was rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerHead {
    /// Rows sealed so far (the last position; 0 before the first).
    pub position: i64,
    /// The chain's hash at that position, lowercase hex (64 characters).
    pub hash: String,
    /// When the last batch was sealed.
    pub sealed_at: Option<DateTime<Utc>>,
}

/// A filter over one owner's audit trail, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// The tenant whose trail is read.
    pub owner_id: OwnerId,
    /// Only this kind of resource.
    pub resource_type: Option<String>,
    /// Only this resource.
    pub resource_id: Option<String>,
    /// At most this many rows.
    pub limit: u32,
    /// Rows older than this audit entry (keyset pagination by id).
    pub before: Option<AuditId>,
}
