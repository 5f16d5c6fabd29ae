//! Rate limits per principal (`owner:<uuid>`, `agent:<uuid>`) or, before anyone is
//! authenticated, per client address (`ip:<addr>`). A limiter that fails never fails the
//! request: limiting is protection, not correctness.

use std::net::IpAddr;

use crate::SharedState;
use crate::error::ApiError;

/// Counts one request for `subject` and refuses it with 429 when over the configured rate.
///
/// # Errors
/// 429 `rate_limited` with `Retry-After` when the limiter refuses.
pub(crate) async fn enforce(state: &SharedState, subject: &str) -> Result<(), ApiError> {
    let Some(rate) = state.config.rate else {
        return Ok(());
    };
    match state.rate_limiter.check(subject, rate).await {
        Ok(decision) if decision.allowed => Ok(()),
        Ok(decision) => {
            tracing::debug!(subject, "Request rate limited");
            metrics::counter!("waiaas_http_rate_limited_total").increment(1);
            Err(ApiError::rate_limited(decision.retry_after))
        }
        Err(e) => {
            tracing::debug!(subject, error = %e, "Rate limiter failed; request allowed");
            metrics::counter!("waiaas_http_rate_limiter_errors_total").increment(1);
            Ok(())
        }
    }
}

/// The subject for requests made before authentication.
pub(crate) fn ip_subject(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "ip:unknown".to_owned(), |ip| format!("ip:{ip}"))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use axum::http::header;
    use axum::response::IntoResponse;

    use super::*;

    #[test]
    fn an_address_is_its_own_subject() {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(ip_subject(Some(ip)), "ip:10.0.0.7");
        assert_eq!(ip_subject(None), "ip:unknown");
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_never_zero() {
        for (wait, expected) in [
            (Duration::ZERO, "1"),
            (Duration::from_millis(1), "1"),
            (Duration::from_secs(2), "2"),
            (Duration::from_millis(2001), "3"),
        ] {
            let response = ApiError::rate_limited(wait).into_response();
            assert_eq!(
                response.headers()[header::RETRY_AFTER],
                expected,
                "{wait:?}"
            );
        }
    }
}
