//! Owners, sessions, agents and their API keys.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;
use uuid::Uuid;
#[cfg(feature = "domain")]
use waiaas_domain::{Agent, AgentStatus, ApiKey, Owner, ports::AgentPresence};

/// `POST /v1/owners`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateOwner {
    /// Display name, 1–100 characters.
    #[cfg_attr(feature = "openapi", schema(example = "Acme Robotics"))]
    pub name: String,
}

/// An owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OwnerDto {
    /// Identity.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

#[cfg(feature = "domain")]
impl From<Owner> for OwnerDto {
    fn from(o: Owner) -> Self {
        Self {
            id: o.id.into(),
            name: o.name.into(),
            created_at: o.created_at,
        }
    }
}

/// A registered owner with its first API key, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OwnerCreated {
    /// The owner.
    pub owner: OwnerDto,
    /// The owner's API key (`wak_…`): store it, it is never shown again.
    pub api_key: String,
}

/// A session opened with an API key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionCreated {
    /// The session token (`wst_…`), shown once.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// `POST /v1/agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// Display name, 1–100 characters.
    #[cfg_attr(feature = "openapi", schema(example = "trading-bot"))]
    pub name: String,
}

/// An agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AgentDto {
    /// Identity.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// `active` or `suspended` (a deleted agent is not shown).
    #[cfg_attr(feature = "openapi", schema(example = "active"))]
    pub status: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Whether the agent holds an event stream (SSE or WebSocket) open; `null` when it
    /// cannot be known (Redis unavailable), never a guess.
    pub online: Option<bool>,
    /// When the agent was last seen with a stream open; `null` when never (or unknown).
    pub last_seen_at: Option<DateTime<Utc>>,
}

#[cfg(feature = "domain")]
impl AgentDto {
    /// The agent with its presence (`None`: unknown).
    pub fn of(a: Agent, presence: Option<AgentPresence>) -> Self {
        Self {
            id: a.id.into(),
            name: a.name.into(),
            status: a.status.as_str().to_owned(),
            created_at: a.created_at,
            online: presence.map(|p| p.online),
            last_seen_at: presence.and_then(|p| p.last_seen_at),
        }
    }
}

/// The statuses an owner may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SettableStatus {
    /// May move money within its policies.
    Active,
    /// May read but not move money.
    Suspended,
}

#[cfg(feature = "domain")]
impl From<SettableStatus> for AgentStatus {
    fn from(s: SettableStatus) -> Self {
        match s {
            SettableStatus::Active => Self::Active,
            SettableStatus::Suspended => Self::Suspended,
        }
    }
}

/// `PATCH /v1/agents/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    /// The new status.
    pub status: SettableStatus,
}

/// `POST /v1/agents/{id}/keys` (optional body).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Seconds until the key stops working (1 to 315360000, ten years); absent or `null`:
    /// it never expires.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 315_360_000))]
    #[serde(default, deserialize_with = "crate::whole::opt_i64")]
    pub expires_in_s: Option<i64>,
}

/// An API key as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct KeyDto {
    /// The key's id.
    pub id: Uuid,
    /// `active`, `expired` or `revoked`.
    #[cfg_attr(feature = "openapi", schema(example = "active"))]
    pub status: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops (or stopped) working; `null`: never.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked; `null` while it is not.
    pub revoked_at: Option<DateTime<Utc>>,
}

#[cfg(feature = "domain")]
impl KeyDto {
    /// Keys as listed now.
    pub fn list(keys: Vec<ApiKey>) -> crate::Items<Self> {
        let now = Utc::now();
        crate::Items {
            items: keys.into_iter().map(|k| Self::of(k, now)).collect(),
        }
    }

    /// The key as listed at `now`.
    fn of(k: ApiKey, now: DateTime<Utc>) -> Self {
        let status = if k.revoked_at.is_some() {
            "revoked"
        } else if k.is_valid_at(now) {
            "active"
        } else {
            "expired"
        };
        Self {
            id: k.id.into(),
            status: status.to_owned(),
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new API key for an agent, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct KeyCreated {
    /// The key's id.
    pub id: Uuid,
    /// The key (`wak_…`): store it, it is never shown again.
    pub api_key: String,
    /// When it stops working; `null`: never.
    pub expires_at: Option<DateTime<Utc>>,
}
