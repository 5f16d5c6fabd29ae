//! Sessions and API keys (cached, written through on revocation), agents (their deletion
//! revokes keys and sessions) and notifications (the unread count is cached).

use std::sync::Arc;

use async_trait::async_trait;
use waiaas_domain::notifications::{Notification, NotificationPage, UnreadCount};
use waiaas_domain::ports::{AgentRepository, NotificationRepository, SessionRepository};
use waiaas_domain::{
    Agent, AgentError, AgentId, AgentStatus, ApiKey, ApiKeyId, AuditContext, NewApiKey, NewSession,
    NotificationId, OwnerId, PageRequest, Principal, RepoError, Revoked, Session, TokenHash,
};

use super::{detached, unfenced};
use crate::{Cache, Change, Kind};

macro_rules! decorator {
    ($name:ident, $port:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone)]
        pub struct $name {
            inner: Arc<dyn $port>,
            cache: Arc<Cache>,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($name))
            }
        }

        impl $name {
            /// Decorates `inner`.
            #[must_use]
            pub fn new(inner: Arc<dyn $port>, cache: Arc<Cache>) -> Self {
                Self { inner, cache }
            }
        }
    };
}

decorator!(
    CachedSessions,
    SessionRepository,
    "Session lookups through the cache."
);
decorator!(
    CachedAgents,
    AgentRepository,
    "Agents; deleting one writes its revoked sessions through."
);
decorator!(
    CachedNotifications,
    NotificationRepository,
    "Notifications with a cached unread count."
);

fn revoked(sessions: &[Session]) -> Vec<Change> {
    sessions
        .iter()
        .map(|s| Change::value(Kind::Session, s.token_hash.as_str(), s))
        .collect()
}

/// The write-through of what a deletion or key revocation revoked: its sessions and keys.
fn revocation(out: &Revoked) -> Vec<Change> {
    let mut changes = revoked(&out.sessions);
    changes.extend(
        out.keys
            .iter()
            .map(|k| Change::value(Kind::ApiKey, k.hash.as_str(), &k.key)),
    );
    changes
}

#[async_trait]
impl SessionRepository for CachedSessions {
    async fn find_api_key(&self, hash: &TokenHash) -> Result<Option<ApiKey>, RepoError> {
        self.cache
            .read(Kind::ApiKey, hash.as_str(), || {
                self.inner.find_api_key(hash)
            })
            .await
    }

    async fn create_session(
        &self,
        session: &NewSession,
        audit: &AuditContext,
    ) -> Result<Option<Session>, RepoError> {
        self.inner.create_session(session, audit).await
    }

    async fn find_session(&self, hash: &TokenHash) -> Result<Option<Session>, RepoError> {
        self.cache
            .read(Kind::Session, hash.as_str(), || {
                self.inner.find_session(hash)
            })
            .await
    }

    async fn revoke_session(
        &self,
        hash: &TokenHash,
        audit: &AuditContext,
    ) -> Result<Option<Session>, RepoError> {
        let (inner, cache) = (self.inner.clone(), self.cache.clone());
        let (hash, audit) = (hash.clone(), audit.clone());
        // A repeated revocation returns the session as it stands, and writes it through
        // again: the retry of a revocation whose cache step was lost repairs the cache.
        detached(async move {
            let session = inner.revoke_session(&hash, &audit).await?;
            if let Some(s) = &session {
                cache
                    .apply(revoked(std::slice::from_ref(s)))
                    .await
                    .map_err(unfenced::<RepoError>)?;
            }
            Ok(session)
        })
        .await
    }
}

#[async_trait]
impl AgentRepository for CachedAgents {
    async fn create(&self, agent: &Agent, audit: &AuditContext) -> Result<(), AgentError> {
        self.inner.create(agent, audit).await
    }

    async fn get(&self, id: AgentId) -> Result<Option<Agent>, RepoError> {
        self.inner.get(id).await
    }

    async fn list(&self, owner_id: OwnerId) -> Result<Vec<Agent>, RepoError> {
        self.inner.list(owner_id).await
    }

    async fn set_status(
        &self,
        id: AgentId,
        owner_id: OwnerId,
        status: AgentStatus,
        audit: &AuditContext,
    ) -> Result<Agent, AgentError> {
        self.inner.set_status(id, owner_id, status, audit).await
    }

    async fn revoke(
        &self,
        id: AgentId,
        owner_id: OwnerId,
        audit: &AuditContext,
    ) -> Result<Revoked, AgentError> {
        let (inner, cache, audit) = (self.inner.clone(), self.cache.clone(), audit.clone());
        // Written through (or fenced) before the deletion is acknowledged: no instance
        // serves a revoked key or session from Redis afterwards.
        detached(async move {
            let out = inner.revoke(id, owner_id, &audit).await?;
            cache
                .apply(revocation(&out))
                .await
                .map_err(unfenced::<AgentError>)?;
            Ok(out)
        })
        .await
    }

    async fn add_key(&self, key: &NewApiKey, audit: &AuditContext) -> Result<(), AgentError> {
        self.inner.add_key(key, audit).await
    }

    async fn keys(&self, of: Principal) -> Result<Vec<ApiKey>, AgentError> {
        self.inner.keys(of).await
    }

    async fn revoke_key(
        &self,
        of: Principal,
        key: ApiKeyId,
        audit: &AuditContext,
    ) -> Result<Revoked, AgentError> {
        let (inner, cache, audit) = (self.inner.clone(), self.cache.clone(), audit.clone());
        // As a deletion: written through (or fenced) before it is acknowledged; a repeated
        // revocation writes the key through again.
        detached(async move {
            let out = inner.revoke_key(of, key, &audit).await?;
            cache
                .apply(revocation(&out))
                .await
                .map_err(unfenced::<AgentError>)?;
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl NotificationRepository for CachedNotifications {
    async fn list(
        &self,
        owner_id: OwnerId,
        page: &PageRequest<NotificationId>,
    ) -> Result<NotificationPage, RepoError> {
        self.inner.list(owner_id, page).await
    }

    async fn unread(&self, owner_id: OwnerId) -> Result<UnreadCount, RepoError> {
        let load = || async move { self.inner.unread(owner_id).await.map(Some) };
        Ok(self
            .cache
            .read(Kind::Unread, &owner_id.to_string(), load)
            .await?
            .unwrap_or(UnreadCount {
                count: 0,
                version: 0,
            }))
    }

    async fn mark_read(
        &self,
        owner_id: OwnerId,
        id: NotificationId,
        audit: &AuditContext,
    ) -> Result<Option<(Notification, UnreadCount)>, RepoError> {
        let (inner, cache, audit) = (self.inner.clone(), self.cache.clone(), audit.clone());
        detached(async move {
            let out = inner.mark_read(owner_id, id, &audit).await?;
            if let Some((_, count)) = &out {
                cache
                    .apply(vec![Change::value(Kind::Unread, owner_id, count)])
                    .await
                    .map_err(unfenced::<RepoError>)?;
            }
            Ok(out)
        })
        .await
    }
}
