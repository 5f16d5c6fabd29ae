//! Cache keys: the only way a key is made, so every key follows `{module}:{entity}:{scope}:{id}`
//! and every kind has its TTL.

use std::fmt;

/// What an entry holds. Each kind has a fixed key shape and a TTL from settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A wallet's balance (`wallet:balance:wallet:<id>`), versioned by the wallet row.
    Balance,
    /// A wallet's policy (`wallet:policy:wallet:<id>`), versioned by the policy row.
    Policy,
    /// A session (`auth:session:token:<sha256>`), versioned by the session row.
    Session,
    /// An API key (`auth:apikey:hash:<sha256>`): version 1 while live, 2 once revoked.
    ApiKey,
    /// A wallet's spend summary (`finance:summary:wallet:<id>`), versioned by day and wallet.
    Summary,
    /// An owner's unread notification count (`notifications:unread:owner:<id>`).
    Unread,
    /// Who holds a wallet (`wallet:ownership:wallet:<id>`): immutable, also kept in L1.
    Ownership,
    /// An asset's metadata (`asset:meta:code:<code>`): immutable, also kept in L1.
    Asset,
    /// An owner's home snapshot (`widgets:home:owner:<id>`), served only while its
    /// fingerprint is PostgreSQL's.
    Home,
}

impl Kind {
    /// Every kind, for reports.
    pub const ALL: [Self; 9] = [
        Self::Balance,
        Self::Policy,
        Self::Session,
        Self::ApiKey,
        Self::Summary,
        Self::Unread,
        Self::Ownership,
        Self::Asset,
        Self::Home,
    ];

    /// `(module, entity, scope)` of the kind's keys.
    #[must_use]
    pub const fn parts(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Balance => ("wallet", "balance", "wallet"),
            Self::Policy => ("wallet", "policy", "wallet"),
            Self::Session => ("auth", "session", "token"),
            Self::ApiKey => ("auth", "apikey", "hash"),
            Self::Summary => ("finance", "summary", "wallet"),
            Self::Unread => ("notifications", "unread", "owner"),
            Self::Ownership => ("wallet", "ownership", "wallet"),
            Self::Asset => ("asset", "meta", "code"),
            Self::Home => ("widgets", "home", "owner"),
        }
    }

    /// The name used in metrics and logs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Balance => "balance",
            Self::Policy => "policy",
            Self::Session => "session",
            Self::ApiKey => "api_key",
            Self::Summary => "summary",
            Self::Unread => "unread",
            Self::Ownership => "ownership",
            Self::Asset => "asset",
            Self::Home => "home",
        }
    }

    /// Whether entries never change once written (and may live in the in-process L1).
    #[must_use]
    pub const fn is_immutable(self) -> bool {
        matches!(self, Self::Ownership | Self::Asset)
    }

    /// The key of one entry.
    #[must_use]
    pub fn key(self, id: impl fmt::Display) -> String {
        let (module, entity, scope) = self.parts();
        let key = format!("{module}:{entity}:{scope}:{id}");
        debug_assert!(is_valid_key(&key), "malformed cache key {key}");
        key
    }

    /// The `{module}:{entity}:*` pattern of the kind, for scans.
    #[must_use]
    pub fn pattern(self) -> String {
        let (module, entity, _) = self.parts();
        format!("{module}:{entity}:*")
    }
}

/// Whether a key follows `{module}:{entity}:{scope}:{id}`: three lower-case segments and an
/// id without colons or whitespace.
#[must_use]
pub fn is_valid_key(key: &str) -> bool {
    let mut parts = key.splitn(4, ':');
    let word = |s: Option<&str>| {
        s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    };
    word(parts.next())
        && word(parts.next())
        && word(parts.next())
        && parts.next().is_some_and(|id| {
            !id.is_empty() && !id.contains(':') && !id.chars().any(char::is_whitespace)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_makes_keys_that_follow_the_naming_rule() {
        for kind in Kind::ALL {
            let key = kind.key("0193a1b2-0000-7000-8000-000000000000");
            assert!(is_valid_key(&key), "{key}");
        }
        assert_eq!(Kind::Balance.key("x1"), "wallet:balance:wallet:x1");
        assert_eq!(Kind::Session.key("ab12"), "auth:session:token:ab12");
    }

    #[test]
    fn malformed_keys_are_recognised() {
        assert!(!is_valid_key("wallet:balance:x"));
        assert!(!is_valid_key("Wallet:balance:wallet:1"));
        assert!(!is_valid_key("wallet:balance:wallet:a:b"));
        assert!(!is_valid_key("wallet:balance:wallet:"));
        assert!(is_valid_key("ratelimit:requests:agent:123"));
        assert!(is_valid_key("lock:job:name:sweep-sessions"));
    }
}
