//! A circuit breaker: after enough consecutive failures it opens and calls are refused at
//! once (no timeout paid); after a pause one probe is let through; its success closes it.
//! Every transition is logged once and counted, never per request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the pause is over.
    Open,
    /// One probe call is in flight; the others are refused.
    HalfOpen,
}

impl BreakerState {
    /// The gauge value: 0 closed, 1 half-open, 2 open.
    #[must_use]
    pub const fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Instant,
    /// Times the breaker has opened: a changed count tells the cache Redis was unhealthy.
    trips: u64,
}

/// A circuit breaker around one dependency.
#[derive(Debug)]
pub struct Breaker {
    name: &'static str,
    threshold: u32,
    open_for: Duration,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures for `open_for`.
    #[must_use]
    pub fn new(name: &'static str, threshold: u32, open_for: Duration) -> Self {
        metrics::gauge!("waiaas_breaker_state", "dependency" => name)
            .set(BreakerState::Closed.gauge());
        Self {
            name,
            threshold: threshold.max(1),
            open_for,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: Instant::now(),
                trips: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// How many times the breaker has opened so far.
    #[must_use]
    pub fn trips(&self) -> u64 {
        self.lock().trips
    }

    /// Whether a call may go now. In the open state, once the pause is over, exactly one
    /// caller gets `true` (the probe) and the state becomes half-open.
    #[must_use]
    pub fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut s = self.lock();
        match s.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => false,
            BreakerState::Open if now.duration_since(s.opened_at) >= self.open_for => {
                self.transition(&mut s, BreakerState::HalfOpen);
                true
            }
            BreakerState::Open => false,
        }
    }

    /// Records a successful call. Only the probe's success closes an open breaker: a call let
    /// through before the breaker opened may still succeed after it did, and closing on that
    /// would flap the breaker (and pay the timeouts again) while the dependency is failing.
    pub fn success(&self) {
        let mut s = self.lock();
        match s.state {
            BreakerState::Closed => s.failures = 0,
            BreakerState::HalfOpen => {
                s.failures = 0;
                self.transition(&mut s, BreakerState::Closed);
            }
            BreakerState::Open => {}
        }
    }

    /// Records a failed call.
    pub fn failure(&self) {
        self.failure_at(Instant::now());
    }

    fn failure_at(&self, now: Instant) {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        let trip = match s.state {
            BreakerState::HalfOpen => true,
            BreakerState::Closed => s.failures >= self.threshold,
            BreakerState::Open => false,
        };
        if trip {
            s.opened_at = now;
            s.trips += 1;
            self.transition(&mut s, BreakerState::Open);
        }
    }

    fn transition(&self, s: &mut Inner, to: BreakerState) {
        let from = s.state;
        s.state = to;
        metrics::gauge!("waiaas_breaker_state", "dependency" => self.name).set(to.gauge());
        metrics::counter!("waiaas_breaker_transitions_total", "dependency" => self.name, "to" => to.name()).increment(1);
        match to {
            BreakerState::Open if from == BreakerState::Closed => {
                tracing::warn!(
                    dependency = self.name,
                    failures = s.failures,
                    "Circuit breaker opened: serving without it"
                );
            }
            BreakerState::Closed => tracing::info!(
                dependency = self.name,
                "Circuit breaker closed: dependency is back"
            ),
            _ => tracing::debug!(
                dependency = self.name,
                from = from.name(),
                to = to.name(),
                "Circuit breaker moved"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_the_threshold_and_refuses_calls() {
        let b = Breaker::new("test", 3, Duration::from_secs(1));
        let t0 = Instant::now();
        b.failure_at(t0);
        b.failure_at(t0);
        assert!(b.allow_at(t0), "two failures do not open it");
        b.failure_at(t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow_at(t0 + Duration::from_millis(999)));
        assert_eq!(b.trips(), 1);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let b = Breaker::new("test", 2, Duration::from_secs(1));
        let t0 = Instant::now();
        b.failure_at(t0);
        b.success();
        b.failure_at(t0);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_late_success_of_a_call_from_before_the_trip_does_not_close_it() {
        let b = Breaker::new("test", 2, Duration::from_secs(1));
        let t0 = Instant::now();
        b.failure_at(t0);
        b.failure_at(t0);
        assert_eq!(b.state(), BreakerState::Open);
        b.success();
        assert_eq!(b.state(), BreakerState::Open, "only the probe closes it");
        assert!(!b.allow_at(t0 + Duration::from_millis(10)));
        assert_eq!(b.trips(), 1);
    }

    #[test]
    fn after_the_pause_exactly_one_probe_goes_and_its_outcome_decides() {
        let b = Breaker::new("test", 1, Duration::from_secs(1));
        let t0 = Instant::now();
        b.failure_at(t0);
        let later = t0 + Duration::from_secs(1);
        assert!(b.allow_at(later), "the probe goes");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(!b.allow_at(later), "only one probe");
        b.failure_at(later);
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "a failed probe opens it again"
        );
        assert_eq!(b.trips(), 2);
        let again = later + Duration::from_secs(1);
        assert!(b.allow_at(again));
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow_at(again));
    }
}
