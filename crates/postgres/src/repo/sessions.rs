//! API keys and sessions, looked up by the SHA-256 of their secret.

use crate::pool::Begin as _;
use async_trait::async_trait;
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement,
};
use waiaas_domain::ports::SessionRepository;
use waiaas_domain::{
    ApiKey, AuditContext, NewAuditEntry, NewSession, RepoError, Session, TokenHash,
};

use crate::audit;
use crate::convert::principal_columns;
use crate::entity::{api_keys, sessions};
use crate::error::RepoContext as _;
use crate::{Postgres, Work};

/// Share-locks a live API key: neither revoked nor expired. `$1`: the key's hash.
const LOCK_KEY: &str = "SELECT id, agent_id, expires_at FROM api_keys WHERE key_hash = $1 \
     AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) FOR SHARE";

/// Share-locks an agent that was not deleted. `$1`: the agent.
const LOCK_AGENT: &str = "SELECT 1 FROM agents WHERE id = $1 AND status <> 'revoked' FOR SHARE";

#[async_trait]
impl SessionRepository for Postgres {
    async fn find_api_key(&self, hash: &TokenHash) -> Result<Option<ApiKey>, RepoError> {
        self.run(Work::Read, move || self.session_find_api_key(hash))
            .await
    }

    #[tracing::instrument(skip_all, fields(session_id = %session.id))]
    async fn create_session(
        &self,
        session: &NewSession,
        ctx: &AuditContext,
    ) -> Result<Option<Session>, RepoError> {
        self.run(Work::Write, move || {
            self.session_create_session(session, ctx)
        })
        .await
    }

    async fn find_session(&self, hash: &TokenHash) -> Result<Option<Session>, RepoError> {
        self.run(Work::Read, move || self.session_find_session(hash))
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_session(
        &self,
        hash: &TokenHash,
        ctx: &AuditContext,
    ) -> Result<Option<Session>, RepoError> {
        self.run(Work::Write, move || self.session_revoke_session(hash, ctx))
            .await
    }
}

impl Postgres {
    async fn session_find_api_key(&self, hash: &TokenHash) -> Result<Option<ApiKey>, RepoError> {
        api_keys::Entity::find()
            .filter(api_keys::Column::KeyHash.eq(hash.as_str()))
            .one(&self.db)
            .await
            .repo("looking up an API key")?
            .map(ApiKey::try_from)
            .transpose()
            .map_err(RepoError)
    }

    async fn session_create_session(
        &self,
        session: &NewSession,
        ctx: &AuditContext,
    ) -> Result<Option<Session>, RepoError> {
        let (kind, owner, agent) = principal_columns(&session.principal);
        let now = Utc::now();
        let txn = self.db.start().await.repo("beginning session creation")?;
        // The key, then its agent, share-locked: a revocation or deletion either committed
        // before (and the checks below see it) or waits for this session, and then revokes
        // it along with the others.
        let key = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                LOCK_KEY,
                [session.key_hash.as_str().into()],
            ))
            .await
            .repo("locking the API key")?;
        let Some(key) = key else {
            return Ok(None);
        };
        let key_id: uuid::Uuid = key.try_get("", "id").repo("decoding the key")?;
        let key_agent: Option<uuid::Uuid> = key.try_get("", "agent_id").repo("decoding the key")?;
        let key_expiry: Option<chrono::DateTime<Utc>> =
            key.try_get("", "expires_at").repo("decoding the key")?;
        // A session ends no later than the key it was opened with.
        let expires_at =
            key_expiry.map_or(session.expires_at, |k| std::cmp::min(k, session.expires_at));
        if key_agent != agent {
            return Ok(None);
        }
        if let Some(agent) = key_agent {
            let live = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    LOCK_AGENT,
                    [agent.into()],
                ))
                .await
                .repo("locking the agent")?
                .is_some();
            if !live {
                return Ok(None);
            }
        }
        let model = sessions::Entity::insert(sessions::ActiveModel {
            id: Set(*session.id.as_uuid()),
            token_hash: Set(session.token_hash.as_str().to_owned()),
            principal_type: Set(kind.to_owned()),
            owner_id: Set(owner),
            agent_id: Set(agent),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            version: Set(1),
            created_at: Set(now),
            api_key_id: Set(Some(key_id)),
        })
        .exec_with_returning(&txn)
        .await
        .repo("inserting the session")?;
        audit::record(
            &txn,
            ctx,
            NewAuditEntry {
                owner_id: Some(session.principal.owner_id()),
                action: "session.create",
                resource_type: "session",
                resource_id: session.id.to_string(),
                old_value: None,
                new_value: Some(serde_json::json!({ "expires_at": session.expires_at })),
            },
            now,
        )
        .await
        .repo("auditing session creation")?;
        crate::error::commit(txn, "committing session creation")
            .await
            .map_err(RepoError)?;
        Session::try_from(model).map(Some).map_err(RepoError)
    }

    async fn session_find_session(&self, hash: &TokenHash) -> Result<Option<Session>, RepoError> {
        sessions::Entity::find()
            .filter(sessions::Column::TokenHash.eq(hash.as_str()))
            .one(&self.db)
            .await
            .repo("looking up a session")?
            .map(Session::try_from)
            .transpose()
            .map_err(RepoError)
    }

    async fn session_revoke_session(
        &self,
        hash: &TokenHash,
        ctx: &AuditContext,
    ) -> Result<Option<Session>, RepoError> {
        let now = Utc::now();
        let txn = self.db.start().await.repo("beginning session revocation")?;
        let revoked = sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(now))
            .col_expr(
                sessions::Column::Version,
                Expr::col(sessions::Column::Version).add(1),
            )
            .filter(sessions::Column::TokenHash.eq(hash.as_str()))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec_with_returning(&txn)
            .await
            .repo("revoking the session")?;
        let Some(model) = revoked.into_iter().next() else {
            // Revoked before (or never there): the session as it stands, so the caller can
            // write it through again, repairing a cache the first revocation missed.
            txn.rollback().await.repo("ending a repeated revocation")?;
            return self.session_find_session(hash).await;
        };
        let session = Session::try_from(model).map_err(RepoError)?;
        audit::record(
            &txn,
            ctx,
            NewAuditEntry {
                owner_id: Some(session.principal.owner_id()),
                action: "session.revoke",
                resource_type: "session",
                resource_id: session.id.to_string(),
                old_value: None,
                new_value: Some(serde_json::json!({ "revoked_at": now })),
            },
            now,
        )
        .await
        .repo("auditing session revocation")?;
        crate::error::commit(txn, "committing session revocation")
            .await
            .map_err(RepoError)?;
        Ok(Some(session))
    }
}
