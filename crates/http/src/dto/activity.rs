//! The audit trail, notifications and the health probes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use waiaas_domain::notifications::{Notification, UnreadCount};
use waiaas_domain::{Actor, AuditEntry};

/// `GET /v1/audit-logs` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditFilter {
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
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ActorDto {
    /// `owner`, `agent` or `system`.
    #[serde(rename = "type")]
    #[schema(example = "owner")]
    pub kind: String,
    /// The owner's or agent's id; `null` for the system.
    pub id: Option<Uuid>,
}

impl From<Actor> for ActorDto {
    fn from(a: Actor) -> Self {
        Self {
            kind: a.kind().to_owned(),
            id: a.id(),
        }
    }
}

/// One audit row.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEntryDto {
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
    #[schema(value_type = Option<Object>)]
    pub old_value: Option<serde_json::Value>,
    /// The value after.
    #[schema(value_type = Option<Object>)]
    pub new_value: Option<serde_json::Value>,
    /// The request it came from.
    pub request_id: Option<String>,
    /// The client address.
    pub ip: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

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
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LedgerHeadDto {
    /// Rows sealed so far (0 before the first).
    pub position: i64,
    /// The chain's SHA-256 at that position, lowercase hex.
    #[schema(example = "9f2c…")]
    pub hash: String,
    /// When the last batch was sealed (null before the first).
    pub sealed_at: Option<DateTime<Utc>>,
}

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
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotificationDto {
    /// Identity.
    pub id: Uuid,
    /// `approval_requested` or `transfer_denied`.
    #[schema(example = "approval_requested")]
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
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotificationPageDto {
    /// Newest first.
    pub items: Vec<NotificationDto>,
    /// Unread notifications in total.
    pub unread: u64,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<Uuid>,
}

/// A notification marked read, with the unread count after it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotificationRead {
    /// The notification.
    pub notification: NotificationDto,
    /// Unread notifications left.
    pub unread: u64,
}

impl From<(Notification, UnreadCount)> for NotificationRead {
    fn from((n, unread): (Notification, UnreadCount)) -> Self {
        Self {
            notification: n.into(),
            unread: unread.count,
        }
    }
}

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Liveness {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReadinessDto {
    /// `ready`, `degraded` (Redis down: the service works, slower) or `unavailable`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// `up` or `down: <why>`.
    #[schema(example = "up")]
    pub database: String,
    /// `up`, `down: <why>` or `disabled`.
    #[schema(example = "up")]
    pub redis: String,
}
