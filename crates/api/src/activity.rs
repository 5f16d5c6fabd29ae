//! The audit trail, notifications and the health probes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
#[cfg(feature = "domain")]
use waiaas_domain::notifications::{Notification, UnreadCount};
#[cfg(feature = "domain")]
use waiaas_domain::{Actor, AuditEntry};

/// `GET /v1/audit-logs` query.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct AuditFilter {
    /// Only this kind of resource, e.g. `wallet`.
    pub resource_type: Option<String>,
    /// Only this resource.
    pub resource_id: Option<String>,
    /// At most this many rows (clamped to 1–200; default 50).
    pub limit: Option<u32>,
    /// Rows older than this audit entry: the `id` of the last row of the previous page.
    pub before: Option<Uuid>,
}

/// Who performed an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ActorDto {
    /// `owner`, `agent` or `system`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(example = "owner"))]
    pub kind: String,
    /// The owner's or agent's id; `null` for the system.
    pub id: Option<Uuid>,
}

#[cfg(feature = "domain")]
impl From<Actor> for ActorDto {
    fn from(a: Actor) -> Self {
        Self {
            kind: a.kind().to_owned(),
            id: a.id(),
        }
    }
}

/// One audit row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditEntryDto {
    /// Identity.
    pub id: Uuid,
    /// Who acted.
    pub actor: ActorDto,
    /// What happened, e.g. `wallet.policy.set`.
    pub action: String,
    /// The kind of resource.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
    /// The value before.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub old_value: Option<serde_json::Value>,
    /// The value after.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub new_value: Option<serde_json::Value>,
    /// The request it came from.
    pub request_id: Option<String>,
    /// The client address.
    pub ip: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

#[cfg(feature = "domain")]
impl From<AuditEntry> for AuditEntryDto {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id.into(),
            actor: e.actor.into(),
            action: e.action,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            old_value: e.old_value,
            new_value: e.new_value,
            request_id: e.request_id,
            ip: e.ip.map(|ip| ip.to_string()),
            created_at: e.created_at,
        }
    }
}

/// The tamper-evident ledger's latest sealed position: every transaction, ledger entry and
/// audit row up to it is chained by SHA-256. Publish or notarise it; `waiaas verify --from
/// <position>:<hash>` later proves nothing before it was rewritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LedgerHeadDto {
    /// Rows sealed so far (0 before the first).
    pub position: i64,
    /// The chain's SHA-256 at that position, lowercase hex.
    #[cfg_attr(feature = "openapi", schema(example = "9f2c…"))]
    pub hash: String,
    /// When the last batch was sealed (null before the first).
    pub sealed_at: Option<DateTime<Utc>>,
}

#[cfg(feature = "domain")]
impl From<waiaas_domain::LedgerHead> for LedgerHeadDto {
    fn from(h: waiaas_domain::LedgerHead) -> Self {
        Self {
            position: h.position,
            hash: h.hash,
            sealed_at: h.sealed_at,
        }
    }
}

/// One notification for an owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct NotificationDto {
    /// Identity.
    pub id: Uuid,
    /// `approval_requested` or `transfer_denied`.
    #[cfg_attr(feature = "openapi", schema(example = "approval_requested"))]
    pub kind: String,
    /// The wallet concerned; `null` when none is (a webhook that failed to deliver an
    /// agent's event).
    pub wallet_id: Option<Uuid>,
    /// The transaction concerned; `null` when none is.
    pub transaction_id: Option<Uuid>,
    /// A sentence for the owner.
    pub message: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When it was read; `null` while unread.
    pub read_at: Option<DateTime<Utc>>,
}

#[cfg(feature = "domain")]
impl From<Notification> for NotificationDto {
    fn from(n: Notification) -> Self {
        Self {
            id: n.id.into(),
            kind: n.kind.as_str().to_owned(),
            wallet_id: n.wallet_id.map(Into::into),
            transaction_id: n.transaction_id.map(Into::into),
            message: n.message,
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

/// A page of notifications, newest first, with the unread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct NotificationPageDto {
    /// Newest first.
    pub items: Vec<NotificationDto>,
    /// Unread notifications in total.
    pub unread: u64,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<Uuid>,
}

/// A notification marked read, with the unread count after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct NotificationRead {
    /// The notification.
    pub notification: NotificationDto,
    /// Unread notifications left.
    pub unread: u64,
}

#[cfg(feature = "domain")]
impl From<(Notification, UnreadCount)> for NotificationRead {
    fn from((n, unread): (Notification, UnreadCount)) -> Self {
        Self {
            notification: n.into(),
            unread: unread.count,
        }
    }
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Liveness {
    /// Always `ok`.
    #[cfg_attr(feature = "openapi", schema(example = "ok"))]
    pub status: String,
}

/// `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ReadinessDto {
    /// `ready`, `degraded` (Redis down: the service works, slower) or `unavailable`.
    #[cfg_attr(feature = "openapi", schema(example = "ready"))]
    pub status: String,
    /// `up` or `down: <why>`.
    #[cfg_attr(feature = "openapi", schema(example = "up"))]
    pub database: String,
    /// `up`, `down: <why>` or `disabled`.
    #[cfg_attr(feature = "openapi", schema(example = "up"))]
    pub redis: String,
}
