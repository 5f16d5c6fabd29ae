//! What a cached value must tell the cache: its version, and how long it may live at most.

use std::time::Duration;

use chrono::{Datelike as _, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use waiaas_domain::notifications::UnreadCount;
use waiaas_domain::values::Asset;
use waiaas_domain::{ApiKey, Policy, Session, SpendSummary, WalletBalance, WalletOwnership};

/// A value the cache can hold.
pub trait Versioned: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The version of the row(s) it copies; it grows with every committed change.
    fn version(&self) -> i64;

    /// A TTL it must not outlive (a session's expiry), if any.
    fn ttl_cap(&self) -> Option<Duration> {
        None
    }
}

impl Versioned for waiaas_domain::model::HomeData {
    /// When it was read: a slow read of older data cannot replace a newer one. Served only
    /// while its fingerprint is PostgreSQL's (see `CachedWallets::home`).
    fn version(&self) -> i64 {
        self.version
    }
}

impl Versioned for WalletBalance {
    fn version(&self) -> i64 {
        self.version
    }
}

impl Versioned for Policy {
    fn version(&self) -> i64 {
        self.version
    }
}

impl Versioned for UnreadCount {
    fn version(&self) -> i64 {
        self.version
    }
}

impl Versioned for Session {
    fn version(&self) -> i64 {
        self.version
    }

    fn ttl_cap(&self) -> Option<Duration> {
        (self.expires_at - Utc::now()).to_std().ok()
    }
}

impl Versioned for ApiKey {
    fn version(&self) -> i64 {
        ApiKey::version(self)
    }

    fn ttl_cap(&self) -> Option<Duration> {
        self.expires_at
            .and_then(|at| (at - Utc::now()).to_std().ok())
    }
}

/// Immutable entries all have version 1; a deletion tombstones them at version 2.
pub const IMMUTABLE_VERSION: i64 = 1;

impl Versioned for WalletOwnership {
    fn version(&self) -> i64 {
        IMMUTABLE_VERSION
    }
}

impl Versioned for Asset {
    fn version(&self) -> i64 {
        IMMUTABLE_VERSION
    }
}

/// A spend summary with the day it was computed for. Its version combines the wallet's
/// version (first: versions follow commit order) and the day (second: a new day supersedes
/// yesterday's entry when no transaction changed the wallet since).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatedSummary {
    /// The UTC day.
    pub day: NaiveDate,
    /// The summary.
    pub summary: SpendSummary,
}

/// Bits of a summary version that hold the day.
const DAY_BITS: u32 = 20;

/// The cache version of a wallet's summary on a day: the wallet's version in the high bits,
/// so a posting's tombstone always beats a summary read before it committed, whatever day
/// either was computed for (a posting of day D committing after a fill of day D+1 still
/// wins), and the day (days since the Common Era, modulo 2^20: distinct until the year
/// 2870) in the low bits.
#[must_use]
pub fn summary_version(day: NaiveDate, wallet_version: i64) -> i64 {
    let days = i64::from(day.num_days_from_ce()) & ((1 << DAY_BITS) - 1);
    (wallet_version << DAY_BITS) | days
}

impl Versioned for DatedSummary {
    fn version(&self) -> i64 {
        summary_version(self.day, self.summary.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_day_or_a_new_wallet_version_makes_a_newer_summary_version() {
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let d2 = d1.succ_opt().unwrap();
        assert!(summary_version(d1, 5) < summary_version(d1, 6));
        assert!(summary_version(d1, 5) < summary_version(d2, 5));
    }

    #[test]
    fn summary_versions_follow_commit_order_across_midnight() {
        // A reader fills day D+1's summary at wallet version 5; a posting decided on day D
        // commits afterwards, making version 6: its tombstone must win.
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let next = d.succ_opt().unwrap();
        assert!(summary_version(d, 6) > summary_version(next, 5));
        let end = NaiveDate::from_ymd_opt(2870, 12, 31).unwrap();
        assert!(summary_version(end, 1) > summary_version(end.pred_opt().unwrap(), 1));
    }
}
