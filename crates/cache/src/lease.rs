//! The instance's lease to serve cached reads, and the fence a failed cache write raises.
//!
//! Rule 5 (no read that starts after a write's acknowledgement returns older data) holds for
//! cached reads only while every write either lands in Redis or makes the entry it could not
//! replace unreachable before it is acknowledged. Entries carry the epoch they were written
//! in, and an instance serves an entry only when it holds a live lease for that same epoch.
//! A write whose cache update failed releases this instance's lease, starts a new epoch in
//! PostgreSQL and waits until every lease granted under an older epoch has ended (instances
//! that saw Redis fail released theirs already; the others' run out within one lease time).
//! Only then is the write acknowledged; no instance can serve the old entry any more.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What this instance knows about its lease.
#[derive(Debug, Default)]
pub struct Lease {
    inner: Mutex<LeaseInner>,
}

#[derive(Debug, Default, Clone, Copy)]
struct LeaseInner {
    /// The newest epoch this instance has seen (used to stamp writes even without a lease).
    epoch_hint: i64,
    /// The epoch and local deadline of a live lease.
    valid: Option<(i64, Instant)>,
    /// Bumped by every revocation: a grant asked for before a revocation must not undo it.
    generation: u64,
}

impl Lease {
    fn lock(&self) -> std::sync::MutexGuard<'_, LeaseInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The epoch of the live lease, if there is one now.
    #[must_use]
    pub fn current(&self) -> Option<i64> {
        self.current_at(Instant::now())
    }

    fn current_at(&self, now: Instant) -> Option<i64> {
        match self.lock().valid {
            Some((epoch, until)) if now < until => Some(epoch),
            _ => None,
        }
    }

    /// The newest epoch seen, live lease or not.
    #[must_use]
    pub fn epoch_hint(&self) -> i64 {
        self.lock().epoch_hint
    }

    /// The revocation count, to be read before a renewal is sent and handed to
    /// [`Lease::granted`].
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Records a renewal sent at `sent` for `ttl`, granted under `epoch`, asked for when the
    /// revocation count was `generation`. The local deadline is counted from before the
    /// request left, minus a safety margin, so it always ends before the lease PostgreSQL
    /// recorded. A grant whose request was sent before a revocation is ignored: the fence
    /// that revoked the lease does not wait for this instance's own lease, so that grant
    /// must not bring it back. Returns whether the grant took effect.
    pub fn granted(&self, epoch: i64, sent: Instant, ttl: Duration, generation: u64) -> bool {
        let margin = (ttl / 10).max(Duration::from_millis(50));
        let mut s = self.lock();
        s.epoch_hint = s.epoch_hint.max(epoch);
        if s.generation != generation {
            return false;
        }
        s.valid = ttl.checked_sub(margin).map(|d| (epoch, sent + d));
        true
    }

    /// Stops serving cached reads at once; returns whether a lease was live.
    pub fn revoke(&self) -> bool {
        let mut s = self.lock();
        let was = s.valid.is_some_and(|(_, until)| Instant::now() < until);
        s.valid = None;
        s.generation += 1;
        was
    }

    /// Records a newer epoch (after a bump).
    pub fn saw_epoch(&self, epoch: i64) {
        let mut s = self.lock();
        s.epoch_hint = s.epoch_hint.max(epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_asked_for_before_a_revocation_does_not_restore_the_lease() {
        let l = Lease::default();
        let t0 = Instant::now();
        assert!(l.granted(3, t0, Duration::from_secs(2), l.generation()));
        // A renewal leaves ...
        let asked = l.generation();
        // ... a fence revokes the lease while it is under way ...
        l.revoke();
        // ... and its answer arrives afterwards: the revocation stands.
        assert!(!l.granted(3, t0, Duration::from_secs(2), asked));
        assert_eq!(l.current_at(t0), None);
        assert!(l.granted(4, t0, Duration::from_secs(2), l.generation()));
        assert_eq!(l.current_at(t0), Some(4));
    }

    #[test]
    fn a_lease_ends_before_its_recorded_end_and_can_be_revoked() {
        let l = Lease::default();
        assert_eq!(l.current(), None);
        let t0 = Instant::now();
        l.granted(7, t0, Duration::from_secs(2), l.generation());
        assert_eq!(l.current_at(t0), Some(7));
        assert_eq!(l.current_at(t0 + Duration::from_millis(1_799)), Some(7));
        assert_eq!(
            l.current_at(t0 + Duration::from_millis(1_800)),
            None,
            "the margin is kept"
        );
        assert!(l.revoke());
        assert_eq!(l.current_at(t0), None);
        assert_eq!(l.epoch_hint(), 7);
    }
}
