//! API keys and sessions, looked up by the SHA-256 of their secret.

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use waiaas_domain::ports::SessionRepository;
use waiaas_domain::{
    ApiKey, AuditContext, NewAuditEntry, NewSession, RepoError, Session, TokenHash,
};

use crate::Postgres;
use crate::audit;
use crate::convert::principal_columns;
use crate::entity::{api_keys, sessions};
use crate::error::RepoContext as _;

#[async_trait]
impl SessionRepository for Postgres {
    async fn find_api_key(&self, hash: &TokenHash) -> Result<Option<ApiKey>, RepoError> {
        api_keys::Entity::find()
            .filter(api_keys::Column::KeyHash.eq(hash.as_str()))
            .one(&self.db)
            .await
            .repo("looking up an API key")?
            .map(ApiKey::try_from)
            .transpose()
            .map_err(RepoError)
    }

    #[tracing::instrument(skip_all, fields(session_id = %session.id))]
    async fn create_session(
        &self,
        session: &NewSession,
        ctx: &AuditContext,
    ) -> Result<Session, RepoError> {
        let (kind, owner, agent) = principal_columns(&session.principal);
        let now = Utc::now();
        let txn = self.db.begin().await.repo("beginning session creation")?;
        let model = sessions::Entity::insert(sessions::ActiveModel {
            id: Set(*session.id.as_uuid()),
            token_hash: Set(session.token_hash.as_str().to_owned()),
            principal_type: Set(kind.to_owned()),
            owner_id: Set(owner),
            agent_id: Set(agent),
            expires_at: Set(session.expires_at),
            revoked_at: Set(None),
            version: Set(1),
            created_at: Set(now),
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
        txn.commit().await.repo("committing session creation")?;
        Session::try_from(model).map_err(RepoError)
    }

    async fn find_session(&self, hash: &TokenHash) -> Result<Option<Session>, RepoError> {
        sessions::Entity::find()
            .filter(sessions::Column::TokenHash.eq(hash.as_str()))
            .one(&self.db)
            .await
            .repo("looking up a session")?
            .map(Session::try_from)
            .transpose()
            .map_err(RepoError)
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_session(
        &self,
        hash: &TokenHash,
        ctx: &AuditContext,
    ) -> Result<Option<Session>, RepoError> {
        let now = Utc::now();
        let txn = self.db.begin().await.repo("beginning session revocation")?;
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
            return Ok(None);
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
        txn.commit().await.repo("committing session revocation")?;
        Ok(Some(session))
    }
}
