//! Owners, agents and their API keys.

use super::Services;
use crate::errors::{AccessError, AgentError, RepoError};
use crate::ids::NotificationId;
use crate::ids::{AgentId, ApiKeyId, OwnerId};
use crate::model::{
    Agent, AgentStatus, ApiKey, AuditContext, AuditEntry, AuditQuery, LedgerHead, NewApiKey, Owner,
    PageRequest, Principal, Secret,
};
use crate::notifications::{Notification, NotificationPage, UnreadCount};
use crate::values::Name;

/// The longest an expiring API key may live.
pub const MAX_KEY_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(10 * 365 * 24 * 3600);

impl Services {
    /// Registers an owner and issues its first API key (shown once).
    ///
    /// # Errors
    /// `AgentError::Invalid` for a bad name, `Unknown` when storage fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_owner(
        &self,
        name: &str,
        audit: &AuditContext,
    ) -> Result<(Owner, Secret), AgentError> {
        let owner = Owner {
            id: OwnerId::new(),
            name: Name::parse(name)?,
            created_at: self.ports.clock.now(),
        };
        let (key, secret) = NewApiKey::generate(Principal::Owner { owner_id: owner.id });
        self.ports.owners.create(&owner, &key, audit).await?;
        self.ports.feed.committed();
        tracing::info!(owner_id = %owner.id, "Owner created");
        Ok((owner, secret))
    }

    /// Registers an agent for an owner.
    ///
    /// # Errors
    /// `Invalid` for a bad name, `Unknown` when storage fails.
    #[tracing::instrument(skip_all, fields(owner_id = %owner_id))]
    pub async fn create_agent(
        &self,
        owner_id: OwnerId,
        name: &str,
        audit: &AuditContext,
    ) -> Result<Agent, AgentError> {
        let agent = Agent {
            id: AgentId::new(),
            owner_id,
            name: Name::parse(name)?,
            status: AgentStatus::Active,
            version: 1,
            created_at: self.ports.clock.now(),
        };
        self.ports.agents.create(&agent, audit).await?;
        self.ports.feed.committed();
        Ok(agent)
    }

    /// An agent, if the principal is its owner or the agent itself.
    ///
    /// # Errors
    /// `NotFound` otherwise, and for a revoked agent.
    pub async fn get_agent(
        &self,
        principal: &Principal,
        id: AgentId,
    ) -> Result<Agent, AccessError> {
        let agent = self
            .ports
            .agents
            .get(id)
            .await?
            .ok_or(AccessError::NotFound)?;
        let visible = match principal {
            Principal::Owner { owner_id } => agent.owner_id == *owner_id,
            Principal::Agent { agent_id, .. } => agent.id == *agent_id,
        };
        if !visible || agent.status == AgentStatus::Revoked {
            return Err(AccessError::NotFound);
        }
        Ok(agent)
    }

    /// The owner's agents that are not deleted.
    ///
    /// # Errors
    /// `Unknown` when storage fails.
    pub async fn list_agents(&self, owner_id: OwnerId) -> Result<Vec<Agent>, RepoError> {
        self.ports.agents.list(owner_id).await
    }

    /// Suspends or reactivates an agent. A suspended agent may read but not move money.
    ///
    /// # Errors
    /// `NotFound` when the agent is not the owner's or was deleted; `Invalid` never.
    #[tracing::instrument(skip_all, fields(agent_id = %id))]
    pub async fn set_agent_status(
        &self,
        owner_id: OwnerId,
        id: AgentId,
        status: AgentStatus,
        audit: &AuditContext,
    ) -> Result<Agent, AgentError> {
        if status == AgentStatus::Revoked {
            // Revocation has its own path, which also revokes keys and sessions.
            self.delete_agent(owner_id, id, audit).await?;
            return self
                .ports
                .agents
                .get(id)
                .await?
                .ok_or(AgentError::NotFound(id));
        }
        let agent = self
            .ports
            .agents
            .set_status(id, owner_id, status, audit)
            .await?;
        self.ports.feed.committed();
        Ok(agent)
    }

    /// Deletes an agent: its keys and sessions stop working at once. Its wallets and their
    /// history stay (money is never deleted), readable by the owner.
    ///
    /// # Errors
    /// `NotFound` when the agent is not the owner's or already deleted.
    #[tracing::instrument(skip_all, fields(agent_id = %id))]
    pub async fn delete_agent(
        &self,
        owner_id: OwnerId,
        id: AgentId,
        audit: &AuditContext,
    ) -> Result<(), AgentError> {
        let revoked = self.ports.agents.revoke(id, owner_id, audit).await?;
        self.ports.feed.committed();
        tracing::info!(
            revoked_sessions = revoked.sessions.len(),
            revoked_keys = revoked.keys.len(),
            "Agent deleted"
        );
        Ok(())
    }

    /// Issues a new API key for an agent of the owner (shown once).
    ///
    /// # Errors
    /// `NotFound` when the agent is not the owner's or was deleted.
    pub async fn create_agent_key(
        &self,
        owner_id: OwnerId,
        agent_id: AgentId,
        audit: &AuditContext,
    ) -> Result<(ApiKeyId, Secret), AgentError> {
        let (id, secret, _) = self
            .create_expiring_agent_key(owner_id, agent_id, None, audit)
            .await?;
        Ok((id, secret))
    }

    /// The API keys of an agent of the owner, revoked and expired ones included, oldest
    /// first (never their secrets).
    ///
    /// # Errors
    /// `NotFound` when the agent is not the owner's or was deleted.
    pub async fn agent_keys(
        &self,
        owner_id: OwnerId,
        agent_id: AgentId,
    ) -> Result<Vec<ApiKey>, AgentError> {
        self.ports
            .agents
            .keys(Principal::Agent { agent_id, owner_id })
            .await
    }

    /// The owner's own API keys, revoked ones included, oldest first (never their secrets).
    ///
    /// # Errors
    /// `Unknown` when storage fails.
    pub async fn owner_keys(&self, owner_id: OwnerId) -> Result<Vec<ApiKey>, AgentError> {
        self.ports.agents.keys(Principal::Owner { owner_id }).await
    }

    /// Issues another API key for the owner itself (shown once), to rotate the one in use:
    /// issue, switch, then revoke the old one.
    ///
    /// # Errors
    /// `Unknown` when storage fails.
    pub async fn create_owner_key(
        &self,
        owner_id: OwnerId,
        audit: &AuditContext,
    ) -> Result<(ApiKeyId, Secret), AgentError> {
        let (key, secret) = NewApiKey::generate(Principal::Owner { owner_id });
        self.ports.agents.add_key(&key, audit).await?;
        self.ports.feed.committed();
        Ok((key.id, secret))
    }

    /// Revokes one of the owner's own API keys and the sessions opened with it (not its last
    /// working key): once this returns, no instance accepts either.
    ///
    /// # Errors
    /// `KeyNotFound` when the key is not the owner's; `LastKey` for its last working key.
    #[tracing::instrument(skip_all, fields(key_id = %key_id))]
    pub async fn revoke_owner_key(
        &self,
        owner_id: OwnerId,
        key_id: ApiKeyId,
        audit: &AuditContext,
    ) -> Result<ApiKey, AgentError> {
        self.revoke_key(Principal::Owner { owner_id }, key_id, audit)
            .await
    }

    /// Revokes one API key of an agent of the owner, and the sessions opened with it: once
    /// this returns, no instance accepts either. Revoking a revoked key again succeeds.
    ///
    /// # Errors
    /// `NotFound` when the agent is not the owner's or was deleted; `KeyNotFound` when the
    /// key is not the agent's.
    #[tracing::instrument(skip_all, fields(agent_id = %agent_id, key_id = %key_id))]
    pub async fn revoke_agent_key(
        &self,
        owner_id: OwnerId,
        agent_id: AgentId,
        key_id: ApiKeyId,
        audit: &AuditContext,
    ) -> Result<ApiKey, AgentError> {
        self.revoke_key(Principal::Agent { agent_id, owner_id }, key_id, audit)
            .await
    }

    async fn revoke_key(
        &self,
        of: Principal,
        key_id: ApiKeyId,
        audit: &AuditContext,
    ) -> Result<ApiKey, AgentError> {
        let revoked = self.ports.agents.revoke_key(of, key_id, audit).await?;
        self.ports.feed.committed();
        tracing::info!(revoked_sessions = revoked.sessions.len(), "API key revoked");
        revoked
            .keys
            .into_iter()
            .next()
            .map(|k| k.key)
            .ok_or(AgentError::KeyNotFound(key_id))
    }

    /// Issues a new API key for an agent of the owner (shown once) that stops working after
    /// `lifetime` (1 s to 10 years; `None`: never), and returns when it expires.
    ///
    /// # Errors
    /// `Invalid` for a lifetime out of bounds; `NotFound` when the agent is not the owner's
    /// or was deleted.
    #[tracing::instrument(skip_all, fields(agent_id = %agent_id))]
    pub async fn create_expiring_agent_key(
        &self,
        owner_id: OwnerId,
        agent_id: AgentId,
        lifetime: Option<std::time::Duration>,
        audit: &AuditContext,
    ) -> Result<(ApiKeyId, Secret, Option<chrono::DateTime<chrono::Utc>>), AgentError> {
        let expires_at = lifetime
            .map(|d| {
                if d.is_zero() || d > MAX_KEY_LIFETIME {
                    return Err(crate::values::ValueError::KeyLifetime);
                }
                chrono::Duration::from_std(d)
                    .map(|d| self.ports.clock.now() + d)
                    .map_err(|_| crate::values::ValueError::KeyLifetime)
            })
            .transpose()?;
        let (mut key, secret) = NewApiKey::generate(Principal::Agent { agent_id, owner_id });
        key.expires_at = expires_at;
        self.ports.agents.add_key(&key, audit).await?;
        self.ports.feed.committed();
        Ok((key.id, secret, expires_at))
    }

    /// The owner's audit trail.
    ///
    /// # Errors
    /// `Forbidden` for an agent; `Invalid` for a filter that no stored value can match (too
    /// long, or holding control characters such as NUL).
    pub async fn audit_trail(
        &self,
        principal: &Principal,
        mut query: AuditQuery,
    ) -> Result<Vec<AuditEntry>, AccessError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(AccessError::Forbidden("only owners read the audit trail"));
        };
        for filter in [&query.resource_type, &query.resource_id]
            .into_iter()
            .flatten()
        {
            if filter.is_empty()
                || filter.chars().count() > 200
                || filter.chars().any(crate::text::is_invisible)
            {
                return Err(AccessError::Invalid(
                    "audit filters must have 1 to 200 characters and no control or invisible characters",
                ));
            }
        }
        query.owner_id = *owner_id;
        query.limit = super::page_limit(Some(query.limit));
        Ok(self.ports.audit.list(&query).await?)
    }

    /// The tamper-evident ledger's latest sealed position and hash (one chain for the whole
    /// service: owners publish or notarise it, and `waiaas verify` checks the chain up to
    /// it). Owners only.
    ///
    /// # Errors
    /// `Forbidden` for agents; `Repo` when storage fails.
    pub async fn ledger_head(&self, principal: &Principal) -> Result<LedgerHead, AccessError> {
        if !matches!(principal, Principal::Owner { .. }) {
            return Err(AccessError::Forbidden("only owners read the ledger's head"));
        }
        Ok(self.ports.audit.ledger_head().await?)
    }

    /// The owner's notifications with the unread count.
    ///
    /// # Errors
    /// `Forbidden` for an agent.
    pub async fn notifications(
        &self,
        principal: &Principal,
        limit: Option<u32>,
        after: Option<NotificationId>,
    ) -> Result<(NotificationPage, UnreadCount), AccessError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(AccessError::Forbidden("notifications are for owners"));
        };
        let page = PageRequest {
            limit: super::page_limit(limit),
            after,
        };
        let items = self.ports.notifications.list(*owner_id, &page).await?;
        let unread = self.ports.notifications.unread(*owner_id).await?;
        Ok((items, unread))
    }

    /// Marks a notification read.
    ///
    /// # Errors
    /// `NotFound` when it is not the owner's; `Forbidden` for an agent.
    pub async fn mark_notification_read(
        &self,
        principal: &Principal,
        id: NotificationId,
        audit: &AuditContext,
    ) -> Result<(Notification, UnreadCount), AccessError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(AccessError::Forbidden("notifications are for owners"));
        };
        self.ports
            .notifications
            .mark_read(*owner_id, id, audit)
            .await?
            .ok_or(AccessError::NotFound)
    }
}
