//! TTLs per kind, from settings, with jitter so entries written together do not all expire
//! in the same instant.

use std::time::Duration;

use rand::Rng as _;

use crate::keys::Kind;

/// The TTL of each kind and the jitter applied to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttls {
    /// Balances.
    pub balance: Duration,
    /// Policies.
    pub policy: Duration,
    /// Sessions and API keys (capped by each one's expiry).
    pub session: Duration,
    /// Spend summaries.
    pub summary: Duration,
    /// Unread counts.
    pub unread: Duration,
    /// Immutable entries (ownership, assets).
    pub immutable: Duration,
    /// Owners' home snapshots.
    pub home: Duration,
    /// Jitter, in percent of the TTL (0–50).
    pub jitter_percent: u8,
}

impl Default for Ttls {
    fn default() -> Self {
        Self {
            balance: Duration::from_secs(10),
            policy: Duration::from_secs(300),
            session: Duration::from_secs(3600),
            summary: Duration::from_secs(600),
            unread: Duration::from_secs(600),
            immutable: Duration::from_secs(3600),
            home: Duration::from_secs(60),
            jitter_percent: 10,
        }
    }
}

impl Ttls {
    /// The configured TTL of a kind, before jitter.
    #[must_use]
    pub const fn base(&self, kind: Kind) -> Duration {
        match kind {
            Kind::Balance => self.balance,
            Kind::Policy => self.policy,
            Kind::Session | Kind::ApiKey => self.session,
            Kind::Summary => self.summary,
            Kind::Unread => self.unread,
            Kind::Ownership | Kind::Asset => self.immutable,
            Kind::Home => self.home,
        }
    }

    /// The TTL to write: the base shortened by up to `jitter_percent`, never zero.
    #[must_use]
    pub fn for_kind(&self, kind: Kind) -> Duration {
        jittered(self.base(kind), self.jitter_percent)
    }
}

/// `base` minus a random share of up to `percent` percent of it; at least one millisecond.
#[must_use]
pub fn jittered(base: Duration, percent: u8) -> Duration {
    let percent = u32::from(percent.min(50));
    let base_ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX).max(1);
    let spread = base_ms * u64::from(percent) / 100;
    let cut = if spread == 0 {
        0
    } else {
        rand::rng().random_range(0..=spread)
    };
    Duration::from_millis((base_ms - cut).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_bounds_and_never_reaches_zero() {
        let base = Duration::from_secs(10);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let t = jittered(base, 10);
            assert!(t <= base && t >= Duration::from_millis(9_000), "{t:?}");
            seen.insert(t.as_millis());
        }
        assert!(seen.len() > 50, "jitter actually spreads values");
        assert_eq!(jittered(Duration::ZERO, 10), Duration::from_millis(1));
        assert_eq!(jittered(base, 0), base);
        assert!(
            jittered(base, 200) >= Duration::from_secs(5),
            "jitter is capped at half"
        );
    }
}
