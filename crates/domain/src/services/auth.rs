//! Authentication: API keys and sessions. Secrets are looked up by their SHA-256 only.

use chrono::Duration as ChronoDuration;

use super::Services;
use crate::errors::{AuthError, RepoError};
use crate::ids::SessionId;
use crate::model::{
    API_KEY_PREFIX, AuditContext, NewSession, Principal, SESSION_TOKEN_PREFIX, Secret, Session,
};

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A long-lived API key.
    ApiKey,
    /// A session token.
    Session,
}

impl Services {
    /// Resolves a bearer credential to its principal. Revoked keys and sessions, expired
    /// sessions and deleted agents' credentials are refused.
    ///
    /// # Errors
    /// `Unauthenticated`, or `Unknown` when storage fails.
    pub async fn authenticate(
        &self,
        bearer: &str,
    ) -> Result<(Principal, CredentialKind), AuthError> {
        let secret = Secret::from_client(bearer);
        if bearer.starts_with(API_KEY_PREFIX) {
            let key = self.ports.sessions.find_api_key(&secret.hash()).await?;
            return match key {
                Some(k) if k.is_valid_at(self.ports.clock.now()) => {
                    Ok((k.principal, CredentialKind::ApiKey))
                }
                _ => Err(AuthError::Unauthenticated),
            };
        }
        if bearer.starts_with(SESSION_TOKEN_PREFIX) {
            let session = self.ports.sessions.find_session(&secret.hash()).await?;
            return match session {
                Some(s) if s.is_valid_at(self.ports.clock.now()) => {
                    Ok((s.principal, CredentialKind::Session))
                }
                _ => Err(AuthError::Unauthenticated),
            };
        }
        Err(AuthError::Unauthenticated)
    }

    /// Opens a session for a principal authenticated by the API key `api_key`, and returns
    /// its token, shown once. The key and its agent are checked again when the session is
    /// stored, under a lock: a key revoked (or an agent deleted) meanwhile opens nothing.
    ///
    /// # Errors
    /// `Unauthenticated` when the key is no longer valid; `Unknown` when storage fails.
    pub async fn create_session(
        &self,
        principal: &Principal,
        api_key: &str,
        audit: &AuditContext,
    ) -> Result<(Session, Secret), AuthError> {
        let secret = Secret::generate(SESSION_TOKEN_PREFIX);
        let ttl = ChronoDuration::from_std(self.settings.session_ttl)
            .unwrap_or_else(|_| ChronoDuration::hours(1));
        let new = NewSession {
            id: SessionId::new(),
            token_hash: secret.hash(),
            principal: *principal,
            expires_at: self.ports.clock.now() + ttl,
            key_hash: Secret::from_client(api_key).hash(),
        };
        let session = self
            .ports
            .sessions
            .create_session(&new, audit)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        Ok((session, secret))
    }

    /// Revokes the session whose token the caller presents: it stops working at once.
    ///
    /// # Errors
    /// `Unknown` when storage fails.
    pub async fn revoke_session(
        &self,
        token: &str,
        audit: &AuditContext,
    ) -> Result<bool, RepoError> {
        let hash = Secret::from_client(token).hash();
        let revoked = self
            .ports
            .sessions
            .revoke_session(&hash, audit)
            .await?
            .is_some();
        if revoked {
            self.ports.feed.committed();
        }
        Ok(revoked)
    }
}
