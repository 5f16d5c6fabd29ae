//! A recorder of operations and the checks run over them:
//!
//! - no stale read: a read that started after a write was acknowledged must not return an
//!   older version of what that write changed;
//! - monotonic reads: once a read has returned version v, no read that starts later returns
//!   less;
//! - a value always matches its version: two observations of one version of a resource
//!   (a write's acknowledgement, any read) carry the same value;
//! - a revoked credential stays revoked: no authentication that started after the
//!   revocation was acknowledged succeeds.
//!
//! Times are taken conservatively (a write's acknowledgement when its call returned, a
//! read's start before its call and its end after), so a reported violation is a real one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use waiaas_domain::{OwnerId, WalletId};

/// What a version belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// A wallet's balance (versioned by the wallet row).
    Balance(WalletId),
    /// A wallet's policy.
    Policy(WalletId),
    /// A wallet's spend summary (versioned by the wallet row).
    Summary(WalletId),
    /// An owner's unread notification count.
    Unread(OwnerId),
}

#[derive(Debug, Clone, Copy)]
struct Write {
    ack: Instant,
    version: i64,
}

#[derive(Debug, Clone, Copy)]
struct Read {
    start: Instant,
    end: Instant,
    version: i64,
    label: &'static str,
}

/// One stale read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleRead {
    /// What was read.
    pub resource: Resource,
    /// The version returned.
    pub read: i64,
    /// The newest version acknowledged before the read started (for a monotonicity
    /// violation: the version an earlier read had returned).
    pub acknowledged: i64,
    /// Who read it (e.g. the instance).
    pub reader: &'static str,
    /// When the read started, in milliseconds since the history was created.
    pub at_ms: u64,
}

/// The outcome of a check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryReport {
    /// Writes recorded.
    pub writes: usize,
    /// Reads recorded.
    pub reads: usize,
    /// Stale reads found (at most 20 listed, all counted).
    pub stale: Vec<StaleRead>,
    /// How many stale reads there were.
    pub stale_count: usize,
    /// Reads older than what an earlier, finished read returned (at most 20 listed).
    pub regressions: Vec<StaleRead>,
    /// How many there were.
    pub regression_count: usize,
    /// Versions seen with two different values: (resource, version, one value, another).
    pub mismatches: Vec<(Resource, i64, String, String)>,
    /// Authentications that succeeded with a credential revoked before they started.
    pub revoked_but_accepted: usize,
    /// Authentications checked after a revocation.
    pub revocation_checks: usize,
}

impl HistoryReport {
    /// Whether no check found anything.
    #[must_use]
    pub fn clean(&self) -> bool {
        self.stale_count == 0
            && self.regression_count == 0
            && self.mismatches.is_empty()
            && self.revoked_but_accepted == 0
    }
}

/// Records writes, reads and credential checks from many tasks.
#[derive(Debug)]
pub struct History {
    created: Instant,
    writes: Mutex<HashMap<Resource, Vec<Write>>>,
    reads: Mutex<HashMap<Resource, Vec<Read>>>,
    values: Mutex<HashMap<(Resource, i64), String>>,
    mismatches: Mutex<Vec<(Resource, i64, String, String)>>,
    revoked: Mutex<HashMap<String, Instant>>,
    logins: Mutex<Vec<(String, Instant, bool)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Default for History {
    fn default() -> Self {
        Self {
            created: Instant::now(),
            writes: Mutex::default(),
            reads: Mutex::default(),
            values: Mutex::default(),
            mismatches: Mutex::default(),
            revoked: Mutex::default(),
            logins: Mutex::default(),
        }
    }
}

impl History {
    /// An empty history.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `version` of `resource` has `value` (what the version says must never
    /// change).
    fn observe(&self, resource: Resource, version: i64, value: Option<String>) {
        let Some(value) = value else { return };
        let mut values = lock(&self.values);
        match values.get(&(resource, version)) {
            Some(seen) if *seen != value => {
                let mut m = lock(&self.mismatches);
                if m.len() < 20 {
                    m.push((resource, version, seen.clone(), value));
                }
            }
            Some(_) => {}
            None => {
                values.insert((resource, version), value);
            }
        }
    }

    /// A write of `resource` at `version`, acknowledged now.
    pub fn write(&self, resource: Resource, version: i64) {
        self.write_value(resource, version, None);
    }

    /// A write of `resource` at `version` holding `value`, acknowledged now.
    pub fn write_value(&self, resource: Resource, version: i64, value: Option<String>) {
        let w = Write {
            ack: Instant::now(),
            version,
        };
        self.observe(resource, version, value);
        lock(&self.writes).entry(resource).or_default().push(w);
    }

    /// A read of `resource` that started at `start` and returned `version` (now).
    pub fn read(&self, resource: Resource, start: Instant, version: i64, reader: &'static str) {
        self.read_value(resource, start, version, None, reader);
    }

    /// A read of `resource` that started at `start` and returned `version` holding `value`.
    pub fn read_value(
        &self,
        resource: Resource,
        start: Instant,
        version: i64,
        value: Option<String>,
        reader: &'static str,
    ) {
        let r = Read {
            start,
            end: Instant::now(),
            version,
            label: reader,
        };
        self.observe(resource, version, value);
        lock(&self.reads).entry(resource).or_default().push(r);
    }

    /// A credential's revocation, acknowledged now.
    pub fn revoked(&self, credential: &str) {
        lock(&self.revoked).insert(credential.to_owned(), Instant::now());
    }

    /// An authentication with `credential` that started at `start` and `succeeded` or not.
    pub fn login(&self, credential: &str, start: Instant, succeeded: bool) {
        lock(&self.logins).push((credential.to_owned(), start, succeeded));
    }

    /// Runs every check.
    #[must_use]
    pub fn check(&self) -> HistoryReport {
        let writes = lock(&self.writes);
        let reads = lock(&self.reads);
        let mut report = HistoryReport {
            writes: writes.values().map(Vec::len).sum(),
            reads: reads.values().map(Vec::len).sum(),
            mismatches: lock(&self.mismatches).clone(),
            ..HistoryReport::default()
        };
        for (resource, rs) in reads.iter() {
            let mut ws = writes.get(resource).cloned().unwrap_or_default();
            ws.sort_by_key(|w| w.ack);
            stale(&mut report, *resource, &ws, rs, self.created);
            regressions(&mut report, *resource, rs, self.created);
        }
        let revoked = lock(&self.revoked);
        for (credential, start, succeeded) in lock(&self.logins).iter() {
            if let Some(at) = revoked.get(credential)
                && start > at
            {
                report.revocation_checks += 1;
                if *succeeded {
                    report.revoked_but_accepted += 1;
                }
            }
        }
        report
    }
}

fn since(t0: Instant, t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(t0).as_millis()).unwrap_or(u64::MAX)
}

fn push(list: &mut Vec<StaleRead>, count: &mut usize, s: StaleRead) {
    *count += 1;
    if list.len() < 20 {
        list.push(s);
    }
}

/// Reads older than the newest version acknowledged before they started.
fn stale(report: &mut HistoryReport, resource: Resource, ws: &[Write], rs: &[Read], t0: Instant) {
    // The highest version acknowledged up to each write, in acknowledgement order.
    let mut best = Vec::with_capacity(ws.len());
    let mut max = i64::MIN;
    for w in ws {
        max = max.max(w.version);
        best.push(max);
    }
    for r in rs {
        let n = ws.partition_point(|w| w.ack < r.start);
        if n == 0 {
            continue;
        }
        let acknowledged = best[n - 1];
        if r.version < acknowledged {
            push(
                &mut report.stale,
                &mut report.stale_count,
                StaleRead {
                    resource,
                    read: r.version,
                    acknowledged,
                    reader: r.label,
                    at_ms: since(t0, r.start),
                },
            );
        }
    }
}

/// Reads older than what a read that had already finished when they started returned.
fn regressions(report: &mut HistoryReport, resource: Resource, rs: &[Read], t0: Instant) {
    let mut by_end: Vec<&Read> = rs.iter().collect();
    by_end.sort_by_key(|r| r.end);
    let mut best = Vec::with_capacity(by_end.len());
    let mut max = i64::MIN;
    for r in &by_end {
        max = max.max(r.version);
        best.push(max);
    }
    for r in rs {
        let n = by_end.partition_point(|e| e.end < r.start);
        if n == 0 {
            continue;
        }
        if r.version < best[n - 1] {
            push(
                &mut report.regressions,
                &mut report.regression_count,
                StaleRead {
                    resource,
                    read: r.version,
                    acknowledged: best[n - 1],
                    reader: r.label,
                    at_ms: since(t0, r.start),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_after_an_acknowledged_write_must_see_it() {
        let h = History::new();
        let w = Resource::Balance(WalletId::new());
        let before = Instant::now();
        h.write(w, 5);
        let after = Instant::now();
        h.read(w, before, 4, "a");
        h.read(w, after, 5, "a");
        assert_eq!(
            h.check().stale_count,
            0,
            "a read that began before the ack may be older"
        );
        h.read(w, after, 4, "b");
        let report = h.check();
        assert_eq!(report.stale_count, 1);
        assert_eq!(
            report.stale[0],
            StaleRead {
                resource: w,
                read: 4,
                acknowledged: 5,
                reader: "b",
                at_ms: report.stale[0].at_ms,
            }
        );
        assert_eq!((report.writes, report.reads), (1, 3));
    }

    #[test]
    fn a_read_may_not_go_back_behind_one_that_finished_before_it_started() {
        let h = History::new();
        let w = Resource::Policy(WalletId::new());
        let early = Instant::now();
        h.read(w, early, 7, "a");
        // Overlapping the first read: either version is fine.
        h.read(w, early, 6, "b");
        assert_eq!(h.check().regression_count, 0);
        let later = Instant::now();
        h.read(w, later, 6, "b");
        let report = h.check();
        assert_eq!(report.regression_count, 1);
        assert_eq!(report.regressions[0].acknowledged, 7);
    }

    #[test]
    fn one_version_with_two_values_and_a_revoked_credential_that_works_are_caught() {
        let h = History::new();
        let w = Resource::Balance(WalletId::new());
        h.write_value(w, 3, Some("100".into()));
        h.read_value(w, Instant::now(), 3, Some("100".into()), "a");
        assert!(h.check().clean());
        h.read_value(w, Instant::now(), 3, Some("90".into()), "a");
        assert_eq!(h.check().mismatches.len(), 1);

        let h = History::new();
        let before = Instant::now();
        h.revoked("wst_1");
        h.login("wst_1", before, true);
        assert!(
            h.check().clean(),
            "began before the revocation was acknowledged"
        );
        h.login("wst_1", Instant::now(), true);
        let report = h.check();
        assert_eq!(
            (report.revocation_checks, report.revoked_but_accepted),
            (1, 1)
        );
    }
}
