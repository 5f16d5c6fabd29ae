//! In-process stand-ins for the shared infrastructure: an event bus over a tokio broadcast
//! channel and a token-bucket rate limiter. They are the fallbacks while Redis is gone, and
//! the whole story for a single instance run without Redis.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use waiaas_domain::ports::{
    BusStatus, EventBus, EventBusError, Rate, RateDecision, RateLimitError, RateLimiter,
};

/// A message bus inside one process.
#[derive(Debug)]
pub struct LocalEventBus {
    sender: broadcast::Sender<(String, Vec<u8>)>,
}

impl LocalEventBus {
    /// A bus whose slow subscribers drop messages beyond `capacity` (events are best effort).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity.max(1)).0,
        }
    }
}

impl Default for LocalEventBus {
    fn default() -> Self {
        Self::new(1024)
    }
}

#[async_trait]
impl EventBus for LocalEventBus {
    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), EventBusError> {
        // No subscriber is not an error: nobody is listening.
        let _ = self.sender.send((channel.to_owned(), payload));
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, Vec<u8>>, EventBusError> {
        let channel = channel.to_owned();
        let stream = BroadcastStream::new(self.sender.subscribe()).filter_map(move |m| {
            let keep = match m {
                Ok((c, payload)) if c == channel => Some(payload),
                _ => None,
            };
            async move { keep }
        });
        Ok(stream.boxed())
    }

    fn status(&self) -> BusStatus {
        BusStatus {
            connected: true,
            generation: 1,
        }
    }
}

/// A token bucket per subject, in process memory. Buckets idle for a minute are forgotten.
#[derive(Debug, Default)]
pub struct LocalRateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl LocalRateLimiter {
    /// An empty limiter.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn take(&self, subject: &str, rate: Rate, now: Instant) -> RateDecision {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.at) < Duration::from_secs(60));
        }
        let burst = f64::from(rate.burst.max(1));
        let b = buckets.entry(subject.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * rate.per_second;
        b.tokens = (b.tokens + refill).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            RateDecision {
                allowed: true,
                remaining: remaining(b.tokens),
                retry_after: Duration::ZERO,
            }
        } else {
            let wait = if rate.per_second > 0.0 {
                (1.0 - b.tokens) / rate.per_second
            } else {
                60.0
            };
            RateDecision {
                allowed: false,
                remaining: 0,
                retry_after: Duration::from_secs_f64(wait),
            }
        }
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn remaining(tokens: f64) -> u32 {
    tokens.floor().clamp(0.0, f64::from(u32::MAX)) as u32
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn check(&self, subject: &str, rate: Rate) -> Result<RateDecision, RateLimitError> {
        Ok(self.take(subject, rate, Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_refuses_with_a_retry_time() {
        let l = LocalRateLimiter::new();
        let rate = Rate {
            per_second: 1.0,
            burst: 3,
        };
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take("a", rate, t0).allowed);
        }
        let refused = l.take("a", rate, t0);
        assert!(!refused.allowed);
        assert!(
            refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(1)
        );
        assert!(l.take("b", rate, t0).allowed, "subjects are independent");
        assert!(
            l.take("a", rate, t0 + Duration::from_millis(1100)).allowed,
            "tokens refill"
        );
    }

    #[tokio::test]
    async fn a_subscriber_gets_only_its_channel() {
        let bus = LocalEventBus::default();
        let mut sub = bus.subscribe("a").await.unwrap();
        bus.publish("b", b"no".to_vec()).await.unwrap();
        bus.publish("a", b"yes".to_vec()).await.unwrap();
        assert_eq!(sub.next().await.unwrap(), b"yes");
    }
}
