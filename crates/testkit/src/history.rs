//! A recorder of operations and the stale-read check: a read that started after a write was
//! acknowledged must not return an older version of what that write changed.
//!
//! Times are taken conservatively (a write's acknowledgement when its call returned, a
//! read's start before its call), so a reported stale read is a real one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use waiaas_domain::WalletId;

/// What a version belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// A wallet's balance (versioned by the wallet row).
    Balance(WalletId),
    /// A wallet's policy.
    Policy(WalletId),
}

#[derive(Debug, Clone, Copy)]
struct Write {
    ack: Instant,
    version: i64,
}

#[derive(Debug, Clone, Copy)]
struct Read {
    start: Instant,
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
    /// The newest version acknowledged before the read started.
    pub acknowledged: i64,
    /// Who read it (e.g. the instance).
    pub reader: &'static str,
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
}

/// Records writes and reads from many tasks.
#[derive(Debug, Default)]
pub struct History {
    writes: Mutex<HashMap<Resource, Vec<Write>>>,
    reads: Mutex<HashMap<Resource, Vec<Read>>>,
}

impl History {
    /// An empty history.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A write of `resource` at `version`, acknowledged now.
    pub fn write(&self, resource: Resource, version: i64) {
        let w = Write {
            ack: Instant::now(),
            version,
        };
        self.writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(resource)
            .or_default()
            .push(w);
    }

    /// A read of `resource` that started at `start` and returned `version`.
    pub fn read(&self, resource: Resource, start: Instant, version: i64, reader: &'static str) {
        let r = Read {
            start,
            version,
            label: reader,
        };
        self.reads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(resource)
            .or_default()
            .push(r);
    }

    /// Finds every stale read.
    #[must_use]
    pub fn check(&self) -> HistoryReport {
        let writes = self
            .writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let reads = self
            .reads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut report = HistoryReport {
            writes: writes.values().map(Vec::len).sum(),
            reads: reads.values().map(Vec::len).sum(),
            ..HistoryReport::default()
        };
        for (resource, rs) in reads.iter() {
            let mut ws = writes.get(resource).cloned().unwrap_or_default();
            ws.sort_by_key(|w| w.ack);
            // The highest version acknowledged up to each write, in acknowledgement order.
            let mut best = Vec::with_capacity(ws.len());
            let mut max = i64::MIN;
            for w in &ws {
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
                    report.stale_count += 1;
                    if report.stale.len() < 20 {
                        report.stale.push(StaleRead {
                            resource: *resource,
                            read: r.version,
                            acknowledged,
                            reader: r.label,
                        });
                    }
                }
            }
        }
        report
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
                reader: "b"
            }
        );
        assert_eq!((report.writes, report.reads), (1, 3));
    }
}
