//! The shared rate limiter: an atomic GCRA (generic cell rate algorithm) in Lua.

use std::time::Duration;

use async_trait::async_trait;
use fred::types::Value;
use waiaas_domain::ports::{Rate, RateDecision, RateLimitError, RateLimiter};

use crate::client::Redis;
use crate::error::RedisError;

/// The emission interval (time between two requests at the sustained rate), in whole
/// microseconds, and the burst; refuses rates that allow nothing.
fn gcra_args(rate: Rate) -> Result<(u64, u32), RedisError> {
    if !rate.per_second.is_finite() || rate.per_second <= 0.0 || rate.burst == 0 {
        return Err(RedisError::Invalid(format!(
            "a rate of {}/s with a burst of {} allows nothing",
            rate.per_second, rate.burst
        )));
    }
    // Rounded to the microsecond (at most a 1 µs error per request); saturating casts are
    // what is wanted for absurd rates.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let emission = (1_000_000.0 / rate.per_second).round().max(1.0) as u64;
    Ok((emission, rate.burst))
}

#[async_trait]
impl RateLimiter for Redis {
    /// Counts one request of `subject` under the key `ratelimit:requests:<subject>`. A new
    /// subject may make `burst` requests at once, then one per emission interval.
    #[tracing::instrument(level = "trace", skip(self))]
    async fn check(&self, subject: &str, rate: Rate) -> Result<RateDecision, RateLimitError> {
        let (emission, burst) = gcra_args(rate)?;
        let key = self.key(&format!("ratelimit:requests:{subject}"));
        let args = vec![Value::from(emission.to_string()), Value::from(burst)];
        let reply: Vec<i64> = self
            .inner
            .scripts
            .gcra
            .run(&self.inner.cmd, key, args)
            .await?;
        let [allowed, remaining, retry_after_us] = reply[..] else {
            return Err(RedisError::Command("unexpected rate limiter reply".to_owned()).into());
        };
        Ok(RateDecision {
            allowed: allowed == 1,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
            retry_after: Duration::from_micros(u64::try_from(retry_after_us.max(0)).unwrap_or(0)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emission_interval_is_the_time_between_two_requests() {
        let rate = |per_second, burst| Rate { per_second, burst };
        assert_eq!(gcra_args(rate(10.0, 5)).unwrap(), (100_000, 5));
        assert_eq!(gcra_args(rate(3.0, 1)).unwrap(), (333_333, 1));
        assert_eq!(gcra_args(rate(1e9, 1)).unwrap(), (1, 1));
    }

    #[test]
    fn a_rate_that_allows_nothing_is_refused() {
        let rate = |per_second, burst| Rate { per_second, burst };
        assert!(gcra_args(rate(0.0, 5)).is_err());
        assert!(gcra_args(rate(-1.0, 5)).is_err());
        assert!(gcra_args(rate(f64::NAN, 5)).is_err());
        assert!(gcra_args(rate(10.0, 0)).is_err());
    }
}
