//! Credentials: API keys and sessions. Secrets are random 256-bit values shown once and
//! stored only as SHA-256 hashes.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Principal;
use crate::ids::{ApiKeyId, SessionId};

/// The prefix of every API key, so a leaked key is recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "wak_";
/// The prefix of every session token.
pub const SESSION_TOKEN_PREFIX: &str = "wst_";

/// A secret shown to the client once. Its `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A new random 256-bit secret with a recognisable prefix.
    #[must_use]
    pub fn generate(prefix: &str) -> Self {
        let mut bytes = [0_u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{prefix}{}", hex::encode(bytes)))
    }

    /// Wraps a secret presented by a client.
    #[must_use]
    pub fn from_client(s: &str) -> Self {
        Self(s.to_owned())
    }

    /// The secret itself, to hand to the client once.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash under which the secret is stored and looked up.
    #[must_use]
    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The hex SHA-256 of a secret: what PostgreSQL stores and cache keys use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenHash(String);

impl TokenHash {
    /// Wraps a stored hash.
    #[must_use]
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The hex text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored API key (the secret itself is not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Identity.
    pub id: ApiKeyId,
    /// Whose key it is.
    pub principal: Principal,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it stops working, if it ever does.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key authenticates at `now`: not revoked, not expired.
    #[must_use]
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

impl ApiKey {
    /// The version a cached copy carries: 1 while the key is live, 2 once it is revoked (a
    /// revoked key never changes again, and its expiry is part of every copy).
    #[must_use]
    pub const fn version(&self) -> i64 {
        if self.revoked_at.is_some() { 2 } else { 1 }
    }
}

/// An API key as it was revoked, with the hash it is looked up by (so caches can write the
/// revocation through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedKey {
    /// The hash of its secret.
    pub hash: TokenHash,
    /// The key, revoked.
    pub key: ApiKey,
}

/// What deleting an agent revoked, with the new versions caches need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    /// Its sessions.
    pub sessions: Vec<Session>,
    /// Its keys.
    pub keys: Vec<RevokedKey>,
}

/// A key to store: the id, the principal and the hash of the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// Identity.
    pub id: ApiKeyId,
    /// Whose key it is.
    pub principal: Principal,
    /// The hash of the secret.
    pub hash: TokenHash,
    /// When it stops working, if it ever does.
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewApiKey {
    /// A fresh key for a principal, with its secret to show once.
    #[must_use]
    pub fn generate(principal: Principal) -> (Self, Secret) {
        let secret = Secret::generate(API_KEY_PREFIX);
        let key = Self {
            id: ApiKeyId::new(),
            principal,
            hash: secret.hash(),
            expires_at: None,
        };
        (key, secret)
    }
}

/// A session: a short-lived token issued against an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Identity.
    pub id: SessionId,
    /// The hash of its token.
    pub token_hash: TokenHash,
    /// Whose session it is.
    pub principal: Principal,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Bumped by every change of the row (revocation).
    pub version: i64,
}

impl Session {
    /// Whether the session authenticates at `now`.
    #[must_use]
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// A session to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Identity.
    pub id: SessionId,
    /// The hash of its token.
    pub token_hash: TokenHash,
    /// Whose session it is.
    pub principal: Principal,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// The hash of the API key it is opened with.
    pub key_hash: TokenHash,
}

/// What a credential lookup found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionLookup {
    /// A session row (possibly revoked or expired: the caller checks).
    Found(Session),
    /// No session has this token hash.
    Missing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_never_printed() {
        let a = Secret::generate(API_KEY_PREFIX);
        let b = Secret::generate(API_KEY_PREFIX);
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), API_KEY_PREFIX.len() + 64);
        assert_eq!(format!("{a:?}"), "Secret(***)");
        assert_eq!(a.hash(), Secret::from_client(a.expose()).hash());
        assert_ne!(a.hash(), b.hash());
    }
}
