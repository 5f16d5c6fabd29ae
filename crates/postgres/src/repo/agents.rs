//! Agents: creation, status changes, deletion with its keys and sessions, new keys, and one
//! key's revocation with the sessions opened with it.

use crate::pool::Begin as _;
use anyhow::Context as _;
use async_trait::async_trait;
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use waiaas_domain::ports::AgentRepository;
use waiaas_domain::{
    Agent, AgentError, AgentId, AgentStatus, ApiKey, ApiKeyId, AuditContext, NewApiKey,
    NewAuditEntry, OwnerId, Principal, RepoError, Revoked, RevokedKey, Session, TokenHash,
};

use crate::audit;
use crate::entity::{agents, api_keys, owners, sessions};
use crate::error::{DbContext as _, RepoContext as _};
use crate::{Postgres, Work};

/// Narrows a query on `api_keys` to the keys of `of`: an agent's, or the owner's own.
fn keys_of<Q: QueryFilter>(q: Q, of: Principal) -> Q {
    match of {
        Principal::Agent { agent_id, owner_id } => q
            .filter(api_keys::Column::AgentId.eq(*agent_id.as_uuid()))
            .filter(api_keys::Column::OwnerId.eq(*owner_id.as_uuid())),
        Principal::Owner { owner_id } => q
            .filter(api_keys::Column::OwnerId.eq(*owner_id.as_uuid()))
            .filter(api_keys::Column::PrincipalType.eq("owner")),
    }
}

/// Locks an agent of this owner that is not revoked.
async fn lock_live_agent(
    txn: &DatabaseTransaction,
    id: AgentId,
    owner: OwnerId,
) -> Result<agents::Model, AgentError> {
    agents::Entity::find_by_id(*id.as_uuid())
        .lock_exclusive()
        .one(txn)
        .await
        .doing("locking the agent")?
        .filter(|a| a.owner_id == *owner.as_uuid() && a.status != AgentStatus::Revoked.as_str())
        .ok_or(AgentError::NotFound(id))
}

#[async_trait]
impl AgentRepository for Postgres {
    #[tracing::instrument(skip_all, fields(agent_id = %agent.id))]
    async fn create(&self, agent: &Agent, ctx: &AuditContext) -> Result<(), AgentError> {
        self.run(Work::Write, move || self.agent_create(agent, ctx))
            .await
    }

    async fn get(&self, id: AgentId) -> Result<Option<Agent>, RepoError> {
        self.run(Work::Read, move || self.agent_get(id)).await
    }

    async fn list(&self, owner_id: OwnerId) -> Result<Vec<Agent>, RepoError> {
        self.run(Work::Read, move || self.agent_list(owner_id))
            .await
    }

    #[tracing::instrument(skip_all, fields(agent_id = %id, status = status.as_str()))]
    async fn set_status(
        &self,
        id: AgentId,
        owner_id: OwnerId,
        status: AgentStatus,
        ctx: &AuditContext,
    ) -> Result<Agent, AgentError> {
        self.run(Work::Write, move || {
            self.agent_set_status(id, owner_id, status, ctx)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(agent_id = %id))]
    async fn revoke(
        &self,
        id: AgentId,
        owner_id: OwnerId,
        ctx: &AuditContext,
    ) -> Result<Revoked, AgentError> {
        self.run(Work::Write, move || self.agent_revoke(id, owner_id, ctx))
            .await
    }

    async fn keys(&self, of: Principal) -> Result<Vec<ApiKey>, AgentError> {
        self.run(Work::Read, move || self.agent_keys(of)).await
    }

    #[tracing::instrument(skip_all, fields(key_id = %key))]
    async fn revoke_key(
        &self,
        of: Principal,
        key: ApiKeyId,
        ctx: &AuditContext,
    ) -> Result<Revoked, AgentError> {
        self.run(Work::Write, move || self.agent_revoke_key(of, key, ctx))
            .await
    }

    #[tracing::instrument(skip_all, fields(key_id = %key.id))]
    async fn add_key(&self, key: &NewApiKey, ctx: &AuditContext) -> Result<(), AgentError> {
        self.run(Work::Write, move || self.agent_add_key(key, ctx))
            .await
    }
}

impl Postgres {
    async fn agent_create(&self, agent: &Agent, ctx: &AuditContext) -> Result<(), AgentError> {
        let txn = self.db.start().await.doing("beginning agent creation")?;
        agents::Entity::insert(agents::ActiveModel {
            id: Set(*agent.id.as_uuid()),
            owner_id: Set(*agent.owner_id.as_uuid()),
            name: Set(agent.name.as_str().to_owned()),
            status: Set(agent.status.as_str().to_owned()),
            metadata: Set(serde_json::json!({})),
            version: Set(agent.version),
            created_at: Set(agent.created_at),
            updated_at: Set(agent.created_at),
        })
        .exec_without_returning(&txn)
        .await
        .doing("inserting the agent")?;
        audit::record(
            &txn,
            ctx,
            NewAuditEntry {
                owner_id: Some(agent.owner_id),
                action: "agent.create",
                resource_type: "agent",
                resource_id: agent.id.to_string(),
                old_value: None,
                new_value: Some(serde_json::to_value(agent).unwrap_or_default()),
            },
            agent.created_at,
        )
        .await
        .doing("auditing agent creation")?;
        crate::error::commit(txn, "committing agent creation").await?;
        Ok(())
    }

    async fn agent_get(&self, id: AgentId) -> Result<Option<Agent>, RepoError> {
        agents::Entity::find_by_id(*id.as_uuid())
            .one(&self.db)
            .await
            .repo("reading an agent")?
            .map(Agent::try_from)
            .transpose()
            .map_err(RepoError)
    }

    async fn agent_list(&self, owner_id: OwnerId) -> Result<Vec<Agent>, RepoError> {
        agents::Entity::find()
            .filter(agents::Column::OwnerId.eq(*owner_id.as_uuid()))
            .filter(agents::Column::Status.ne(AgentStatus::Revoked.as_str()))
            .order_by_asc(agents::Column::CreatedAt)
            .all(&self.db)
            .await
            .repo("listing agents")?
            .into_iter()
            .map(|m| Agent::try_from(m).map_err(RepoError))
            .collect()
    }

    async fn agent_set_status(
        &self,
        id: AgentId,
        owner_id: OwnerId,
        status: AgentStatus,
        ctx: &AuditContext,
    ) -> Result<Agent, AgentError> {
        let txn = self.db.start().await.doing("beginning a status change")?;
        let before = lock_live_agent(&txn, id, owner_id).await?;
        let now = Utc::now();
        let after = agents::Entity::update(agents::ActiveModel {
            id: Set(before.id),
            status: Set(status.as_str().to_owned()),
            version: Set(before.version + 1),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(&txn)
        .await
        .doing("updating the agent")?;
        audit::record(
            &txn,
            ctx,
            NewAuditEntry {
                owner_id: Some(owner_id),
                action: "agent.status",
                resource_type: "agent",
                resource_id: id.to_string(),
                old_value: Some(serde_json::json!({ "status": before.status })),
                new_value: Some(serde_json::json!({ "status": status })),
            },
            now,
        )
        .await
        .doing("auditing the status change")?;
        crate::error::commit(txn, "committing the status change").await?;
        Ok(Agent::try_from(after)?)
    }

    async fn agent_revoke(
        &self,
        id: AgentId,
        owner_id: OwnerId,
        ctx: &AuditContext,
    ) -> Result<Revoked, AgentError> {
        let txn = self.db.start().await.doing("beginning agent deletion")?;
        let before = lock_live_agent(&txn, id, owner_id).await?;
        let now = Utc::now();
        agents::Entity::update(agents::ActiveModel {
            id: Set(before.id),
            status: Set(AgentStatus::Revoked.as_str().to_owned()),
            version: Set(before.version + 1),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(&txn)
        .await
        .doing("revoking the agent")?;
        let keys = api_keys::Entity::update_many()
            .col_expr(api_keys::Column::RevokedAt, Expr::value(now))
            .filter(api_keys::Column::AgentId.eq(before.id))
            .filter(api_keys::Column::RevokedAt.is_null())
            .exec_with_returning(&txn)
            .await
            .doing("revoking the agent's keys")?;
        let revoked = sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(now))
            .col_expr(
                sessions::Column::Version,
                Expr::col(sessions::Column::Version).add(1),
            )
            .filter(sessions::Column::AgentId.eq(before.id))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec_with_returning(&txn)
            .await
            .doing("revoking the agent's sessions")?;
        audit::record(
            &txn,
            ctx,
            NewAuditEntry {
                owner_id: Some(owner_id),
                action: "agent.delete",
                resource_type: "agent",
                resource_id: id.to_string(),
                old_value: Some(serde_json::json!({ "status": before.status })),
                new_value: Some(serde_json::json!({
                    "status": AgentStatus::Revoked,
                    "revoked_keys": keys.len(),
                    "revoked_sessions": revoked.len(),
                })),
            },
            now,
        )
        .await
        .doing("auditing agent deletion")?;
        crate::error::commit(txn, "committing agent deletion").await?;
        Ok(Revoked {
            sessions: revoked
                .into_iter()
                .map(|m| Session::try_from(m).map_err(AgentError::Unknown))
                .collect::<Result<_, _>>()?,
            keys: keys
                .into_iter()
                .map(|m| {
                    let hash = TokenHash::from_stored(m.key_hash.clone());
                    ApiKey::try_from(m)
                        .map(|key| RevokedKey { hash, key })
                        .map_err(AgentError::Unknown)
                })
                .collect::<Result<_, _>>()?,
        })
    }

    async fn agent_keys(&self, of: Principal) -> Result<Vec<ApiKey>, AgentError> {
        if let Principal::Agent { agent_id, owner_id } = of {
            agents::Entity::find_by_id(*agent_id.as_uuid())
                .one(&self.db)
                .await
                .doing("reading the agent")?
                .filter(|a| {
                    a.owner_id == *owner_id.as_uuid() && a.status != AgentStatus::Revoked.as_str()
                })
                .ok_or(AgentError::NotFound(agent_id))?;
        }
        keys_of(api_keys::Entity::find(), of)
            .order_by_asc(api_keys::Column::CreatedAt)
            .order_by_asc(api_keys::Column::Id)
            .all(&self.db)
            .await
            .doing("reading the keys")?
            .into_iter()
            .map(|m| ApiKey::try_from(m).map_err(AgentError::Unknown))
            .collect()
    }

    async fn agent_revoke_key(
        &self,
        of: Principal,
        key: ApiKeyId,
        ctx: &AuditContext,
    ) -> Result<Revoked, AgentError> {
        let txn = self.db.start().await.doing("beginning key revocation")?;
        let owner = of.owner_id();
        // The principal's row first (an agent not deleted; the owner, which serialises its
        // key revocations for the last-key rule), then the key.
        match of {
            Principal::Agent { agent_id, owner_id } => {
                lock_live_agent(&txn, agent_id, owner_id).await?;
            }
            Principal::Owner { owner_id } => {
                owners::Entity::find_by_id(*owner_id.as_uuid())
                    .lock_exclusive()
                    .one(&txn)
                    .await
                    .doing("locking the owner")?
                    .ok_or(AgentError::KeyNotFound(key))?;
            }
        }
        let target = keys_of(api_keys::Entity::find_by_id(*key.as_uuid()), of)
            .one(&txn)
            .await
            .doing("reading the key")?
            .ok_or(AgentError::KeyNotFound(key))?;
        let now = Utc::now();
        if matches!(of, Principal::Owner { .. }) && target.revoked_at.is_none() {
            let others = keys_of(api_keys::Entity::find(), of)
                .filter(api_keys::Column::Id.ne(*key.as_uuid()))
                .filter(api_keys::Column::RevokedAt.is_null())
                .all(&txn)
                .await
                .doing("counting the owner's keys")?
                .into_iter()
                .filter(|k| k.expires_at.is_none_or(|at| at > now))
                .count();
            if others == 0 {
                return Err(AgentError::LastKey);
            }
        }
        // The key's row lock waits for a session being opened with it (which share-locks the
        // key) and makes a later one find it revoked.
        let model = keys_of(api_keys::Entity::update_many(), of)
            .col_expr(api_keys::Column::RevokedAt, Expr::value(now))
            .filter(api_keys::Column::Id.eq(*key.as_uuid()))
            .filter(api_keys::Column::RevokedAt.is_null())
            .exec_with_returning(&txn)
            .await
            .doing("revoking the key")?
            .into_iter()
            .next()
            .unwrap_or(target);
        let sessions = sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(now))
            .col_expr(
                sessions::Column::Version,
                Expr::col(sessions::Column::Version).add(1),
            )
            .filter(sessions::Column::ApiKeyId.eq(*key.as_uuid()))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec_with_returning(&txn)
            .await
            .doing("revoking the key's sessions")?;
        let (action, resource_type, resource_id) = match of {
            Principal::Agent { agent_id, .. } => {
                ("agent.key.revoke", "agent", agent_id.to_string())
            }
            Principal::Owner { owner_id } => ("owner.key.revoke", "owner", owner_id.to_string()),
        };
        audit::record(
            &txn,
            ctx,
            NewAuditEntry {
                owner_id: Some(owner),
                action,
                resource_type,
                resource_id,
                old_value: None,
                new_value: Some(serde_json::json!({
                    "api_key_id": key,
                    "revoked_at": model.revoked_at,
                    "revoked_sessions": sessions.len(),
                })),
            },
            now,
        )
        .await
        .doing("auditing key revocation")?;
        crate::error::commit(txn, "committing key revocation").await?;
        let hash = TokenHash::from_stored(model.key_hash.clone());
        Ok(Revoked {
            sessions: sessions
                .into_iter()
                .map(|m| Session::try_from(m).map_err(AgentError::Unknown))
                .collect::<Result<_, _>>()?,
            keys: vec![RevokedKey {
                hash,
                key: ApiKey::try_from(model).map_err(AgentError::Unknown)?,
            }],
        })
    }

    async fn agent_add_key(&self, key: &NewApiKey, ctx: &AuditContext) -> Result<(), AgentError> {
        let txn = self.db.start().await.doing("beginning key creation")?;
        let (owner_id, action, resource_type, resource_id) = match key.principal {
            Principal::Agent { agent_id, owner_id } => {
                lock_live_agent(&txn, agent_id, owner_id).await?;
                (owner_id, "agent.key.create", "agent", agent_id.to_string())
            }
            Principal::Owner { owner_id } => {
                (owner_id, "owner.key.create", "owner", owner_id.to_string())
            }
        };
        let now = Utc::now();
        api_keys::Entity::insert(super::owners::key_model(key, now))
            .exec_without_returning(&txn)
            .await
            .doing("inserting the key")?;
        audit::record(
            &txn,
            ctx,
            NewAuditEntry {
                owner_id: Some(owner_id),
                action,
                resource_type,
                resource_id,
                old_value: None,
                new_value: Some(serde_json::json!({ "api_key_id": key.id })),
            },
            now,
        )
        .await
        .context("auditing key creation")?;
        crate::error::commit(txn, "committing key creation").await?;
        Ok(())
    }
}
