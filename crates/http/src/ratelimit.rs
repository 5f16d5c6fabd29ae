//! Rate limits per principal (`owner:<uuid>`, `agent:<uuid>`) or, before anyone is
//! authenticated, per client address (`ip:<addr>`). A limiter that fails never fails the
//! request: limiting is protection, not correctness.
//!
//! Failed authentications are limited per client address too (`authfail:ip:<addr>`, counted
//! in the shared limiter): an address over that limit is answered 429 by this instance,
//! before any credential lookup, until the limiter's `Retry-After` has passed. Guessing
//! credentials therefore costs the database at most the allowed rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use waiaas_domain::ports::{Rate, RateLimiter};

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

/// Addresses refused for failing authentication too often, until when.
#[derive(Debug, Default)]
pub(crate) struct Blocked(Mutex<HashMap<IpAddr, Instant>>);

/// How many blocked addresses are remembered before expired ones are pruned.
const BLOCKED_PRUNE_AT: usize = 10_000;

impl Blocked {
    fn until(&self, ip: IpAddr) -> Option<Instant> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&ip)
            .copied()
            .filter(|until| *until > Instant::now())
    }

    fn block(&self, ip: IpAddr, until: Instant) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= BLOCKED_PRUNE_AT {
            let now = Instant::now();
            map.retain(|_, u| *u > now);
        }
        map.insert(ip, until);
    }
}

/// What the authentication-failure guard needs.
#[derive(Clone)]
pub(crate) struct AuthFailures {
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) rate: Option<Rate>,
    pub(crate) blocked: Arc<Blocked>,
}

/// Refuses requests from an address that failed authentication too often (429, before any
/// lookup), and counts every 401 against its address.
pub(crate) async fn guard_auth_failures(
    State(guard): State<AuthFailures>,
    req: Request,
    next: Next,
) -> Response {
    let Some(rate) = guard.rate else {
        return next.run(req).await;
    };
    // Probes, metrics and the API's description take no credential: never refused here, so
    // a load balancer's health checks keep working whatever came from its address.
    if !req.uri().path().starts_with("/v1/") {
        return next.run(req).await;
    }
    let ip = req
        .extensions()
        .get::<crate::proxy::ClientAddr>()
        .map(|a| a.0);
    if let Some(until) = ip.and_then(|ip| guard.blocked.until(ip)) {
        metrics::counter!("waiaas_http_rate_limited_total").increment(1);
        return ApiError::rate_limited(until.saturating_duration_since(Instant::now()))
            .into_response();
    }
    let response = next.run(req).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        let subject = auth_failure_subject(ip);
        match guard.limiter.check(&subject, rate).await {
            Ok(decision) if !decision.allowed => {
                if let Some(ip) = ip {
                    let wait = decision.retry_after.max(Duration::from_millis(1));
                    guard.blocked.block(ip, Instant::now() + wait);
                }
                tracing::warn!(subject, "Too many failed authentications: address blocked");
                metrics::counter!("waiaas_http_auth_failures_blocked_total").increment(1);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "Rate limiter failed; authentication failure not counted");
            }
        }
    }
    response
}

/// An address as the id of a key: IPv6 colons become `-`, since a key's id holds none
/// (`{module}:{entity}:{scope}:{id}`).
fn address_id(ip: Option<IpAddr>) -> String {
    ip.map_or_else(
        || "unknown".to_owned(),
        |ip| ip.to_string().replace(':', "-"),
    )
}

/// The subject for requests made before authentication.
pub(crate) fn ip_subject(ip: Option<IpAddr>) -> String {
    format!("ip:{}", address_id(ip))
}

/// The subject counting an address's failed authentications.
fn auth_failure_subject(ip: Option<IpAddr>) -> String {
    format!("authfail:{}", address_id(ip))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use axum::http::header;
    use axum::response::IntoResponse;

    use super::*;

    #[test]
    fn an_address_is_its_own_subject_and_makes_a_well_formed_key() {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(ip_subject(Some(ip)), "ip:10.0.0.7");
        assert_eq!(ip_subject(None), "ip:unknown");
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_subject(Some(v6)), "ip:2001-db8--1");
        assert_eq!(auth_failure_subject(Some(ip)), "authfail:10.0.0.7");
        for subject in [ip_subject(Some(v6)), auth_failure_subject(Some(v6))] {
            // The key the Redis limiter makes of it, checked by the suite's key scan.
            let key = format!("ratelimit:requests:{subject}");
            assert_eq!(key.matches(':').count(), 3, "{key}");
        }
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
