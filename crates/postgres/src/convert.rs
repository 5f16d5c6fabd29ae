//! Conversions from stored rows to domain types. A row that breaks a domain invariant (a
//! negative balance, an unknown status) is a bug or a tampered database: an error, never a
//! silent default.

use anyhow::{Context as _, anyhow};
use waiaas_domain::model::{Actor, Budget, HoldFacts, OwnerDecision};
use waiaas_domain::model::{TransactionKind, TransactionStatus, Wallet, WalletBalance};
use waiaas_domain::notifications::{Notification, NotificationKind};
use waiaas_domain::policy::{Level, Policy, PolicyRules, Rule};
use waiaas_domain::values::Asset;
use waiaas_domain::{
    Agent, AgentId, AgentStatus, ApiKey, ApiKeyId, AssetCode, AuditEntry, AuditId, Destination,
    IdempotencyKey, Memo, Money, Name, NotificationId, Owner, OwnerId, Principal, Session,
    SessionId, TokenHash, Transaction, TransactionId, WalletId,
};

use crate::entity::{
    agents, api_keys, assets, audit_logs, notifications, owners, sessions, transactions,
    wallet_policies, wallets,
};

pub(crate) fn principal(
    kind: &str,
    owner: uuid::Uuid,
    agent: Option<uuid::Uuid>,
) -> anyhow::Result<Principal> {
    let owner_id = OwnerId::from_uuid(owner);
    match (kind, agent) {
        ("owner", None) => Ok(Principal::Owner { owner_id }),
        ("agent", Some(a)) => Ok(Principal::Agent {
            agent_id: AgentId::from_uuid(a),
            owner_id,
        }),
        _ => Err(anyhow!("stored principal `{kind}` is inconsistent")),
    }
}

/// The stored (type, owner, agent) of a principal.
pub(crate) fn principal_columns(p: &Principal) -> (&'static str, uuid::Uuid, Option<uuid::Uuid>) {
    match p {
        Principal::Owner { owner_id } => ("owner", *owner_id.as_uuid(), None),
        Principal::Agent { agent_id, owner_id } => {
            ("agent", *owner_id.as_uuid(), Some(*agent_id.as_uuid()))
        }
    }
}

pub(crate) fn money(v: i64, what: &'static str) -> anyhow::Result<Money> {
    Money::new(v).with_context(|| format!("stored {what} is negative"))
}

impl TryFrom<owners::Model> for Owner {
    type Error = anyhow::Error;
    fn try_from(m: owners::Model) -> anyhow::Result<Self> {
        Ok(Self {
            id: OwnerId::from_uuid(m.id),
            name: Name::parse(&m.name)?,
            created_at: m.created_at,
        })
    }
}

impl TryFrom<agents::Model> for Agent {
    type Error = anyhow::Error;
    fn try_from(m: agents::Model) -> anyhow::Result<Self> {
        Ok(Self {
            id: AgentId::from_uuid(m.id),
            owner_id: OwnerId::from_uuid(m.owner_id),
            name: Name::parse(&m.name)?,
            status: AgentStatus::from_db(&m.status)
                .ok_or_else(|| anyhow!("unknown agent status `{}`", m.status))?,
            version: m.version,
            created_at: m.created_at,
        })
    }
}

impl TryFrom<api_keys::Model> for ApiKey {
    type Error = anyhow::Error;
    fn try_from(m: api_keys::Model) -> anyhow::Result<Self> {
        Ok(Self {
            id: ApiKeyId::from_uuid(m.id),
            principal: principal(&m.principal_type, m.owner_id, m.agent_id)?,
            created_at: m.created_at,
            revoked_at: m.revoked_at,
            expires_at: m.expires_at,
        })
    }
}

impl TryFrom<sessions::Model> for Session {
    type Error = anyhow::Error;
    fn try_from(m: sessions::Model) -> anyhow::Result<Self> {
        Ok(Self {
            id: SessionId::from_uuid(m.id),
            token_hash: TokenHash::from_stored(m.token_hash),
            principal: principal(&m.principal_type, m.owner_id, m.agent_id)?,
            expires_at: m.expires_at,
            revoked_at: m.revoked_at,
            version: m.version,
        })
    }
}

impl TryFrom<assets::Model> for Asset {
    type Error = anyhow::Error;
    fn try_from(m: assets::Model) -> anyhow::Result<Self> {
        Ok(Self {
            code: AssetCode::parse(&m.code)?,
            name: m.name,
            decimals: u8::try_from(m.decimals).context("asset decimals out of range")?,
        })
    }
}

impl TryFrom<wallets::Model> for Wallet {
    type Error = anyhow::Error;
    fn try_from(m: wallets::Model) -> anyhow::Result<Self> {
        Ok(Self {
            id: WalletId::from_uuid(m.id),
            agent_id: AgentId::from_uuid(m.agent_id),
            owner_id: OwnerId::from_uuid(m.owner_id),
            asset: AssetCode::parse(&m.asset)?,
            name: m.name.as_deref().map(Name::parse).transpose()?,
            balance: money(m.balance, "balance")?,
            held: money(m.held, "held")?,
            version: m.version,
            created_at: m.created_at,
        })
    }
}

pub(crate) fn balance(
    id: uuid::Uuid,
    asset: &str,
    balance: i64,
    held: i64,
    version: i64,
) -> anyhow::Result<WalletBalance> {
    Ok(WalletBalance {
        wallet_id: WalletId::from_uuid(id),
        asset: AssetCode::parse(asset)?,
        balance: money(balance, "balance")?,
        held: money(held, "held")?,
        version,
    })
}

pub(crate) fn policy(
    wallet_id: WalletId,
    m: Option<wallet_policies::Model>,
) -> anyhow::Result<Policy> {
    match m {
        None => Ok(Policy::unrestricted(wallet_id)),
        Some(m) => Ok(Policy {
            wallet_id,
            rules: serde_json::from_value::<PolicyRules>(m.rules)
                .context("stored policy rules are invalid")?,
            version: m.version,
            updated_at: Some(m.updated_at),
        }),
    }
}

impl TryFrom<transactions::Model> for Transaction {
    type Error = anyhow::Error;
    fn try_from(m: transactions::Model) -> anyhow::Result<Self> {
        let budget_hourly = m
            .budget_hourly_remaining
            .map(u32::try_from)
            .transpose()
            .context("stored hourly budget is negative")?;
        Ok(Self {
            id: TransactionId::from_uuid(m.id),
            kind: TransactionKind::from_db(&m.kind)
                .ok_or_else(|| anyhow!("unknown kind `{}`", m.kind))?,
            status: TransactionStatus::from_db(&m.status)
                .ok_or_else(|| anyhow!("unknown status `{}`", m.status))?,
            asset: AssetCode::parse(&m.asset)?,
            amount: money(m.amount, "amount")?,
            from_wallet_id: m.from_wallet_id.map(WalletId::from_uuid),
            to_wallet_id: m.to_wallet_id.map(WalletId::from_uuid),
            destination: m
                .destination
                .as_deref()
                .map(Destination::parse)
                .transpose()?,
            memo: m.memo.as_deref().map(Memo::parse).transpose()?,
            metadata: m.metadata,
            initiated_by: Actor::from_db(&m.initiator_type, m.initiator_id)
                .ok_or_else(|| anyhow!("unknown initiator `{}`", m.initiator_type))?,
            idempotency_key: m
                .idempotency_key
                .as_deref()
                .map(IdempotencyKey::parse)
                .transpose()?,
            rule: m.decision_rule.as_deref().and_then(Rule::from_db),
            reason: m.reason,
            // The whole budget since it is recorded; the two columns before.
            budget: match m.budget {
                Some(json) => serde_json::from_value(json).context("stored budget is invalid")?,
                None => Budget {
                    daily_remaining: m
                        .budget_daily_remaining
                        .map(|v| money(v, "daily budget"))
                        .transpose()?,
                    hourly_remaining: budget_hourly,
                    ..Budget::default()
                },
            },
            level: m.decision_level.as_deref().and_then(Level::from_db),
            approval_deadline: m.approval_deadline,
            mandate_id: m.mandate_id.map(waiaas_domain::MandateId::from_uuid),
            decision: m.decision.as_deref().and_then(OwnerDecision::from_db),
            hold: HoldFacts {
                expires_at: m.expires_at,
                held_at: m.held_at,
                captured: m.captured.map(|c| money(c, "captured")).transpose()?,
                hold_id: m.hold_id.map(TransactionId::from_uuid),
            },
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

impl TryFrom<audit_logs::Model> for AuditEntry {
    type Error = anyhow::Error;
    fn try_from(m: audit_logs::Model) -> anyhow::Result<Self> {
        Ok(Self {
            id: AuditId::from_uuid(m.id),
            owner_id: m.owner_id.map(OwnerId::from_uuid),
            actor: Actor::from_db(&m.actor_type, m.actor_id)
                .ok_or_else(|| anyhow!("unknown actor `{}`", m.actor_type))?,
            action: m.action,
            resource_type: m.resource_type,
            resource_id: m.resource_id,
            old_value: m.old_value,
            new_value: m.new_value,
            request_id: m.request_id,
            ip: m
                .ip
                .as_deref()
                .and_then(|ip| ip.split('/').next()?.parse().ok()),
            created_at: m.created_at,
        })
    }
}

impl TryFrom<notifications::Model> for Notification {
    type Error = anyhow::Error;
    fn try_from(m: notifications::Model) -> anyhow::Result<Self> {
        Ok(Self {
            id: NotificationId::from_uuid(m.id),
            owner_id: OwnerId::from_uuid(m.owner_id),
            kind: NotificationKind::from_db(&m.kind)
                .ok_or_else(|| anyhow!("unknown notification `{}`", m.kind))?,
            wallet_id: m.wallet_id.map(WalletId::from_uuid),
            transaction_id: m.transaction_id.map(TransactionId::from_uuid),
            message: m.message,
            created_at: m.created_at,
            read_at: m.read_at,
        })
    }
}
