//! # waiaas-http
//!
//! The HTTP API of WAIaaS: an axum router over the domain's [`Services`], with bearer
//! authentication, per-principal rate limits, idempotent money-moving endpoints, a live event
//! stream per wallet, health and readiness probes, Prometheus metrics and an OpenAPI document.
//!
//! The crate knows no adapter: the composition root builds an [`AppState`] from the wired
//! services, a [`RateLimiter`] and a [`HealthCheck`], and serves [`router`] with
//! `into_make_service_with_connect_info::<SocketAddr>()` so audit rows carry the client address.

mod auth;
mod consistency;
mod console;
mod dto;
mod error;
mod extract;
mod middleware;
mod openapi;
mod proxy;
mod ratelimit;
mod routes;
mod sse;
mod streams;
#[cfg(test)]
mod tests;
mod ws;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::catch_panic::CatchPanicLayer;
use waiaas_domain::Services;
use waiaas_domain::ports::{Rate, RateLimiter};

pub use consistency::{Consistency, TOKEN_HEADER};
pub use proxy::{ClientAddr, TrustedProxies};
pub use streams::{StreamLimits, Streams};

/// How the HTTP layer behaves.
#[derive(Clone)]
pub struct HttpConfig {
    /// Request bodies larger than this are refused with 413.
    pub body_limit_bytes: usize,
    /// A request that takes longer than this is answered with a 503 `timeout` error.
    pub request_timeout: Duration,
    /// The token that allows `POST /v1/owners`; `None` disables owner registration.
    pub bootstrap_token: Option<String>,
    /// The rate allowed per principal; `None` disables rate limiting.
    pub rate: Option<Rate>,
    /// The rate of failed authentications allowed per client address; beyond it the address
    /// is answered 429 before any credential lookup. `None` disables the limit.
    pub auth_failure_rate: Option<Rate>,
    /// Proxies whose `X-Forwarded-For` names the client (for audit rows and per-address
    /// limits); from anyone else the header is ignored.
    pub trusted_proxies: TrustedProxies,
    /// Who may read `/metrics` on this router.
    pub metrics: MetricsAccess,
}

/// Who may read `/metrics` on the public router.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone who reaches the port (keep the port private).
    #[default]
    Open,
    /// Only with `Authorization: Bearer <token>`; anyone else gets `401`.
    Token(String),
    /// Nobody: the metrics are served on another listener, and here `/metrics` is `404`.
    Elsewhere,
}

impl fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open => f.write_str("Open"),
            Self::Token(_) => f.write_str("Token(***)"),
            Self::Elsewhere => f.write_str("Elsewhere"),
        }
    }
}

/// A router serving only `GET /metrics` (for `server.metrics_listen`), with `token` required
/// when given.
pub fn metrics_router(
    render: Arc<dyn Fn() -> String + Send + Sync>,
    token: Option<String>,
) -> Router {
    let access = token.map_or(MetricsAccess::Open, MetricsAccess::Token);
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let (render, access) = (render.clone(), access.clone());
                async move { routes::health::exposition(&access, &headers, render.as_ref()) }
            }),
        )
        .fallback(routes::not_found)
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bootstrap token is a secret: say whether it is set, never what it is.
        f.debug_struct("HttpConfig")
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("request_timeout", &self.request_timeout)
            .field(
                "bootstrap_token",
                &self.bootstrap_token.as_ref().map(|_| "***"),
            )
            .field("rate", &self.rate)
            .field("auth_failure_rate", &self.auth_failure_rate)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics", &self.metrics)
            .finish()
    }
}

/// The state of one dependency as seen by the readiness probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentStatus {
    /// It answers.
    Up,
    /// It does not answer; the text says why (never a secret).
    Down(String),
    /// It is not configured.
    Disabled,
}

/// The readiness of the service's dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// PostgreSQL: the service is not ready without it.
    pub database: ComponentStatus,
    /// Redis: the service runs degraded without it.
    pub redis: ComponentStatus,
}

/// Probes the service's dependencies for `GET /readyz`.
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// Checks every dependency. Implementations bound each check with a short timeout.
    async fn readiness(&self) -> Readiness;
}

/// Everything the handlers need.
#[derive(Clone)]
pub struct AppState {
    /// The domain's use cases.
    pub services: Services,
    /// Counts requests per principal.
    pub rate_limiter: Arc<dyn RateLimiter>,
    /// Probes dependencies for the readiness endpoint.
    pub health: Arc<dyn HealthCheck>,
    /// Renders the Prometheus exposition served at `/metrics`.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// The HTTP settings.
    pub config: HttpConfig,
    /// The open event streams (bounded; ended at once by [`Streams::close_all`]) and the
    /// presence of the agents holding them.
    pub streams: Streams,
    /// Consistency tokens, when listings may be read from replicas (`None`: no tokens).
    pub consistency: Option<Arc<dyn Consistency>>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("services", &self.services)
            .field("config", &self.config)
            .field("streams", &self.streams)
            .finish_non_exhaustive()
    }
}

/// The state as the handlers hold it: shared, never cloned field by field.
pub(crate) type SharedState = Arc<AppState>;

/// The complete API with every layer: request ids, tracing, metrics, the request timeout,
/// panic recovery and the body limit. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit_bytes;
    let timeout = state.config.request_timeout;
    let proxies = state.config.trusted_proxies.clone();
    let auth_failures = ratelimit::AuthFailures {
        limiter: state.rate_limiter.clone(),
        rate: state.config.auth_failure_rate,
        blocked: Arc::default(),
    };
    let state = Arc::new(state);
    routes::api()
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        // `Router::layer` wraps every route, so these run after routing and see the
        // matched path. The last one added runs first.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::scope_tenant,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.consistency.clone(),
            consistency::tokens,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            auth_failures,
            ratelimit::guard_auth_failures,
        ))
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            middleware::timeout,
        ))
        .layer(axum::middleware::from_fn(middleware::observe))
        .layer(axum::middleware::from_fn_with_state(
            proxies,
            proxy::client_address,
        ))
        .with_state(state)
}
