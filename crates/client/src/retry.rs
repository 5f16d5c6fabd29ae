//! Sending a call again when the service or the network says "later": a `503` (the
//! database is unavailable, a wallet is busy, a commit's outcome is unknown) or a
//! connection that fails before any answer. The retry is the same request, with the same
//! `Idempotency-Key`, so the service replays what the first attempt committed, if anything.

use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::{RequestBuilder, Response, StatusCode};
use waiaas_api::ErrorCode;

use crate::error::{self, Error};
use crate::{Client, Safety};

/// When and how often a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: never retry).
    pub max_attempts: u32,
    /// The first wait when the service gives no `Retry-After` (a connection error); each
    /// later one doubles.
    pub backoff: Duration,
    /// The longest wait between two attempts, whatever `Retry-After` says.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, waiting `Retry-After` (the service says 1 s) or 200 ms doubling, at
    /// most 5 s.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            backoff: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    #[must_use]
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait before attempt `attempt + 1`: the service's `Retry-After` if it sent one,
    /// else the backoff for this attempt; never above `max_delay`.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = || {
            let factor = 2_u32.saturating_pow(attempt.saturating_sub(1));
            self.backoff.saturating_mul(factor)
        };
        retry_after.unwrap_or_else(backoff).min(self.max_delay)
    }
}

/// `Retry-After` in seconds (the only form the service sends).
fn retry_after(response: &Response) -> Option<Duration> {
    let text = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse().ok().map(Duration::from_secs)
}

/// Whether an error answer may be retried: a `503`, and for a call that must not run twice,
/// only the one that says nothing was written (`wallet_busy`).
fn answer_is_retryable(error: &Error, safety: Safety) -> bool {
    match error {
        Error::Api { status, code, .. } if *status == StatusCode::SERVICE_UNAVAILABLE => {
            safety == Safety::Repeatable || *code == ErrorCode::WalletBusy
        }
        _ => false,
    }
}

/// Whether a transport failure may be retried: a repeatable call whenever no answer came; a
/// call that must not run twice only when the connection was never made.
fn transport_is_retryable(error: &reqwest::Error, safety: Safety) -> bool {
    match safety {
        Safety::Repeatable => {
            error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
        }
        Safety::Once => error.is_connect(),
    }
}

impl Client {
    /// Sends `request` until it succeeds, fails for good, or runs out of attempts; answers
    /// the successful response.
    pub(crate) async fn send(
        &self,
        request: RequestBuilder,
        safety: Safety,
    ) -> Result<Response, Error> {
        let mut attempt = 1;
        loop {
            // Bodies here are JSON in memory, so a request can always be copied.
            let Some(this) = request.try_clone() else {
                return request.send().await.map_err(Error::Transport);
            };
            let (error, wait) = match this.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let after = retry_after(&response);
                    let error = error::from_response(response).await;
                    if !answer_is_retryable(&error, safety) {
                        return Err(error);
                    }
                    (error, after)
                }
                Err(e) => {
                    if !transport_is_retryable(&e, safety) {
                        return Err(Error::Transport(e));
                    }
                    (Error::Transport(e), None)
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(error);
            }
            let delay = self.retry.delay(attempt, wait);
            tracing::debug!(attempt, delay_ms = delay.as_millis(), error = %error, "Retrying a call");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::RetryPolicy;

    #[test]
    fn the_wait_is_the_services_retry_after_or_a_doubling_backoff_both_capped() {
        let policy = RetryPolicy {
            max_attempts: 5,
            backoff: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        assert_eq!(policy.delay(1, None), Duration::from_millis(100));
        assert_eq!(policy.delay(3, None), Duration::from_millis(400));
        assert_eq!(policy.delay(30, None), Duration::from_secs(2));
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(2)
        );
    }
}
