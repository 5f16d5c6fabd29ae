//! What this process knows about one database's health, shared by every pool on it:
//!
//! - when a broken connection was last seen, so that pooled connections idle since before
//!   then are tested (pinged) before reuse: after a restart or `pg_terminate_backend`, the
//!   request that finds the first dead connection is retried once, on a tested one, and the
//!   others never meet a dead connection at all;
//! - a back-off while the server cannot be reached or has no connection slot left: requests
//!   that would need a new connection are answered `database_unavailable` at once instead
//!   of each trying to connect, except one probe per back-off period. The period doubles up
//!   to [`MAX_BACKOFF`] and ends with the first success.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;

use crate::error::DbFault;

/// The first back-off after a failed connection.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest back-off.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The health of one database (server and database name).
#[derive(Debug)]
pub(crate) struct PoolHealth {
    /// Milliseconds since [`epoch`] when a broken connection was last seen; 0 for never.
    lost_at: AtomicU64,
    /// Whether a back-off is in force (a cheap check for the common, healthy case).
    backing_off: AtomicBool,
    backoff: Mutex<Backoff>,
}

#[derive(Debug, Default)]
struct Backoff {
    /// No new connection is tried before this, except by the probe.
    until: Option<Instant>,
    /// The current period.
    period: Duration,
    /// A probe is running.
    probing: bool,
    /// Consecutive failures, for the log.
    failures: u32,
}

/// What the gate says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Go ahead.
    Go,
    /// Go ahead as the one probe of this back-off period; report the result.
    Probe,
    /// Do not try: the server is known to be unreachable.
    Refuse,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn millis_since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl PoolHealth {
    fn new() -> Self {
        Self {
            lost_at: AtomicU64::new(0),
            backing_off: AtomicBool::new(false),
            backoff: Mutex::new(Backoff::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Backoff> {
        self.backoff
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a pooled connection that has been idle for `idle_for` may have broken
    /// unseen: it was idle since before the last broken connection was seen.
    pub(crate) fn suspect(&self, idle_for: Duration) -> bool {
        let lost = self.lost_at.load(Ordering::Acquire);
        if lost == 0 {
            return false;
        }
        let released = Instant::now()
            .checked_sub(idle_for)
            .map_or(0, millis_since_epoch);
        released <= lost
    }

    /// Decides whether a request may use the database now. While backing off, a request
    /// that an idle pooled connection can serve still goes ahead; one that would need a new
    /// connection is refused, but for one probe per period.
    pub(crate) fn admit(&self, db: &DatabaseConnection) -> Admission {
        if !self.backing_off.load(Ordering::Acquire) {
            return Admission::Go;
        }
        if db.get_postgres_connection_pool().num_idle() > 0 {
            return Admission::Go;
        }
        let mut b = self.lock();
        let due = b.until.is_none_or(|until| Instant::now() >= until);
        if due && !b.probing {
            b.probing = true;
            Admission::Probe
        } else {
            Admission::Refuse
        }
    }

    /// Records a failure of the database.
    pub(crate) fn failed(&self, fault: DbFault, url: &str) {
        match fault {
            DbFault::Lost => {
                self.lost_at
                    .store(millis_since_epoch(Instant::now()), Ordering::Release);
            }
            DbFault::Unreachable { too_many_clients } => {
                let mut b = self.lock();
                b.probing = false;
                b.failures += 1;
                b.period = if b.period.is_zero() {
                    MIN_BACKOFF
                } else {
                    (b.period * 2).min(MAX_BACKOFF)
                };
                b.until = Some(Instant::now() + b.period);
                let first = !self.backing_off.swap(true, Ordering::AcqRel);
                if too_many_clients {
                    tracing::warn!(
                        database = %url,
                        retry_in_ms = b.period.as_millis() as u64,
                        "PostgreSQL refused a connection: too many clients already (its max_connections is reached); backing off"
                    );
                } else if first || b.failures.is_power_of_two() {
                    tracing::warn!(
                        database = %url,
                        failures = b.failures,
                        retry_in_ms = b.period.as_millis() as u64,
                        "PostgreSQL unreachable: answering database_unavailable and backing off"
                    );
                }
            }
            DbFault::Timeout | DbFault::Busy => {}
        }
    }

    /// Records a success: any back-off ends.
    pub(crate) fn succeeded(&self, url: &str) {
        if !self.backing_off.load(Ordering::Acquire) {
            return;
        }
        let mut b = self.lock();
        if b.failures > 0 {
            tracing::info!(database = %url, failures = b.failures, "PostgreSQL reachable again");
        }
        *b = Backoff::default();
        self.backing_off.store(false, Ordering::Release);
    }

    /// Ends a probe that neither succeeded nor failed to connect (it failed otherwise).
    pub(crate) fn probe_done(&self) {
        self.lock().probing = false;
    }
}

/// The health of the database at `key` (`host:port/database`), shared by every pool on it
/// in this process.
pub(crate) fn of(key: &str) -> Arc<PoolHealth> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<PoolHealth>>>> = OnceLock::new();
    REGISTRY
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key.to_owned())
        .or_insert_with(|| Arc::new(PoolHealth::new()))
        .clone()
}

/// The registry key of the database a pool connects to.
pub(crate) fn key_of(options: &sea_orm::sqlx::postgres::PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_idle_since_before_a_loss_are_suspect_and_newer_ones_are_not() {
        let h = PoolHealth::new();
        assert!(!h.suspect(Duration::from_secs(100)));
        h.failed(DbFault::Lost, "db");
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            h.suspect(Duration::from_secs(1)),
            "idle since before the loss"
        );
        assert!(
            !h.suspect(Duration::from_millis(0)),
            "released after the loss"
        );
    }

    #[test]
    fn the_back_off_doubles_and_ends_with_a_success() {
        let h = PoolHealth::new();
        let unreachable = DbFault::Unreachable {
            too_many_clients: false,
        };
        h.failed(unreachable, "db");
        assert_eq!(h.lock().period, MIN_BACKOFF);
        h.failed(unreachable, "db");
        assert_eq!(h.lock().period, MIN_BACKOFF * 2);
        for _ in 0..20 {
            h.failed(unreachable, "db");
        }
        assert_eq!(h.lock().period, MAX_BACKOFF);
        h.succeeded("db");
        assert!(!h.backing_off.load(Ordering::Acquire));
        assert!(h.lock().until.is_none());
    }
}
