//! The entities of the domain: owners, agents, wallets, transactions, credentials and audit.

mod audit;
mod credentials;
mod home;
mod mandate;
mod transaction;

pub use audit::{Actor, AuditContext, AuditEntry, AuditQuery, LedgerHead, NewAuditEntry};
pub use credentials::{
    API_KEY_PREFIX, ApiKey, NewApiKey, NewSession, Revoked, RevokedKey, SESSION_TOKEN_PREFIX,
    Secret, Session, SessionLookup, TokenHash,
};
pub use home::{
    HOME_PENDING_LIMIT, Home, HomeAgent, HomeData, HomeLevel, HomeWallet, LevelView, WalletNow,
    WalletView,
};
pub use mandate::{Mandate, MandateRefusal, MandateStatus};
pub use transaction::{
    Budget, HoldFacts, InvalidFilter, LedgerEntry, LevelBudget, MAX_METADATA_FILTERS,
    OwnerDecision, Transaction, TransactionKind, TransactionPage, TransactionStatus, TxCursor,
    TxFilter, clamp_time,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, OwnerId, WalletId};
use crate::money::Money;
use crate::values::{AssetCode, Name};

/// A person or company that registers agents and sets their policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Identity.
    pub id: OwnerId,
    /// Display name.
    pub name: Name,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Whether an agent may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// May read and move money within its policies.
    Active,
    /// May read but not move money.
    Suspended,
    /// Deleted by its owner: its keys and sessions no longer work.
    Revoked,
}

impl AgentStatus {
    /// The stored text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
        }
    }

    /// Parses the stored text.
    #[must_use]
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// An AI agent acting for its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Identity.
    pub id: AgentId,
    /// The owner it acts for.
    pub owner_id: OwnerId,
    /// Display name.
    pub name: Name,
    /// Whether it may act.
    pub status: AgentStatus,
    /// Bumped by every change.
    pub version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A wallet: one asset, one holder, a balance kept in PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    /// Identity.
    pub id: WalletId,
    /// The agent holding it.
    pub agent_id: AgentId,
    /// The agent's owner.
    pub owner_id: OwnerId,
    /// The asset it holds.
    pub asset: AssetCode,
    /// Optional display name.
    pub name: Option<Name>,
    /// The balance in minor units.
    pub balance: Money,
    /// The part of the balance reserved by open holds.
    pub held: Money,
    /// Bumped by every change of the row.
    pub version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl Wallet {
    /// Who holds the wallet: never changes once the wallet exists.
    #[must_use]
    pub fn ownership(&self) -> WalletOwnership {
        WalletOwnership {
            wallet_id: self.id,
            agent_id: self.agent_id,
            owner_id: self.owner_id,
            asset: self.asset.clone(),
        }
    }

    /// The balance as a versioned snapshot.
    #[must_use]
    pub fn balance_snapshot(&self) -> WalletBalance {
        WalletBalance {
            wallet_id: self.id,
            asset: self.asset.clone(),
            balance: self.balance,
            held: self.held,
            version: self.version,
        }
    }
}

/// The immutable facts about a wallet: which agent and owner hold it and its asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletOwnership {
    /// The wallet.
    pub wallet_id: WalletId,
    /// Its agent.
    pub agent_id: AgentId,
    /// Its owner.
    pub owner_id: OwnerId,
    /// Its asset.
    pub asset: AssetCode,
}

/// A wallet's balance at one version of its row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletBalance {
    /// The wallet.
    pub wallet_id: WalletId,
    /// Its asset.
    pub asset: AssetCode,
    /// The balance in minor units.
    pub balance: Money,
    /// The part of the balance reserved by open holds (at most the balance).
    pub held: Money,
    /// The row version this balance was read at.
    pub version: i64,
}

impl WalletBalance {
    /// What the wallet can still spend: the balance less what open holds reserve.
    #[must_use]
    pub fn available(&self) -> Money {
        self.balance.saturating_sub(self.held)
    }
}

/// How much a wallet spent in a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SpendTotals {
    /// Minor units spent; when `capped`, the largest amount representable (`i64::MAX`) and
    /// the true total is above it.
    pub spent: Money,
    /// Number of outgoing transactions.
    pub count: u32,
    /// The true total exceeds what `spent` can hold: `spent` is a floor, not the total.
    #[serde(default)]
    pub capped: bool,
}

/// A wallet's spend today (UTC) and this month (UTC), versioned by the wallet row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendSummary {
    /// The wallet.
    pub wallet_id: WalletId,
    /// Today's outgoing spend.
    pub today: SpendTotals,
    /// This month's outgoing spend.
    pub month: SpendTotals,
    /// The wallet row version the summary was read at.
    pub version: i64,
}

/// Who is calling: an owner or an agent, as established by a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Principal {
    /// An owner.
    Owner {
        /// The owner.
        owner_id: OwnerId,
    },
    /// An agent of an owner.
    Agent {
        /// The agent.
        agent_id: AgentId,
        /// Its owner.
        owner_id: OwnerId,
    },
}

impl Principal {
    /// The owner behind the principal.
    #[must_use]
    pub const fn owner_id(&self) -> OwnerId {
        match self {
            Self::Owner { owner_id } | Self::Agent { owner_id, .. } => *owner_id,
        }
    }

    /// The agent, when the principal is one.
    #[must_use]
    pub const fn agent_id(&self) -> Option<AgentId> {
        match self {
            Self::Agent { agent_id, .. } => Some(*agent_id),
            Self::Owner { .. } => None,
        }
    }

    /// Whether this principal may see a wallet with this ownership: its owner, or the
    /// agent holding it.
    #[must_use]
    pub fn can_see(&self, wallet: &WalletOwnership) -> bool {
        match self {
            Self::Owner { owner_id } => *owner_id == wallet.owner_id,
            Self::Agent { agent_id, .. } => *agent_id == wallet.agent_id,
        }
    }

    /// The actor recorded in the audit trail.
    #[must_use]
    pub const fn actor(&self) -> Actor {
        match self {
            Self::Owner { owner_id } => Actor::Owner(*owner_id),
            Self::Agent { agent_id, .. } => Actor::Agent(*agent_id),
        }
    }
}

/// A page request for keyset pagination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<C> {
    /// At most this many items (1–200).
    pub limit: u32,
    /// Continue after this cursor.
    pub after: Option<C>,
}
