//! Unauthenticated operational endpoints: liveness, readiness, metrics and the OpenAPI
//! document.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::dto::{ErrorBody, Liveness, ReadinessDto};
use crate::error::ApiError;
use crate::{ComponentStatus, SharedState, openapi};

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive", body = Liveness)))]
pub(crate) async fn healthz() -> Json<Liveness> {
    Json(Liveness {
        status: "ok".to_owned(),
    })
}

/// Readiness: ready when PostgreSQL answers, degraded (still 200) when Redis does not.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "PostgreSQL is up; `degraded` when Redis is down", body = ReadinessDto),
        (status = 503, description = "PostgreSQL is down", body = ReadinessDto),
    ))]
pub(crate) async fn readyz(State(state): State<SharedState>) -> (StatusCode, Json<ReadinessDto>) {
    let readiness = state.health.readiness().await;
    let (code, status) = match (&readiness.database, &readiness.redis) {
        (ComponentStatus::Down(_), _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (_, ComponentStatus::Down(_)) => (StatusCode::OK, "degraded"),
        _ => (StatusCode::OK, "ready"),
    };
    let body = ReadinessDto {
        status: status.to_owned(),
        database: describe(&readiness.database),
        redis: describe(&readiness.redis),
    };
    (code, Json(body))
}

fn describe(status: &ComponentStatus) -> String {
    match status {
        ComponentStatus::Up => "up".to_owned(),
        ComponentStatus::Down(why) => format!("down: {why}"),
        ComponentStatus::Disabled => "disabled".to_owned(),
    }
}

/// Prometheus metrics in the text exposition format. With `server.metrics_token` set it asks
/// for that token as a bearer token; with `server.metrics_listen` set it is served there and
/// is `404` here.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "`server.metrics_token` is set and was not given", body = ErrorBody),
        (status = 404, description = "Served on `server.metrics_listen` instead", body = ErrorBody),
    ))]
pub(crate) async fn metrics(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    exposition(&state.config.metrics, &headers, state.metrics.as_ref())
}

/// The exposition, if `access` lets this request have it.
pub(crate) fn exposition(
    access: &crate::MetricsAccess,
    headers: &axum::http::HeaderMap,
    render: &(dyn Fn() -> String + Send + Sync),
) -> axum::response::Response {
    use subtle::ConstantTimeEq as _;
    match access {
        crate::MetricsAccess::Elsewhere => {
            return ApiError::not_found("no such route").into_response();
        }
        crate::MetricsAccess::Token(token) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
                return ApiError::unauthenticated().into_response();
            }
        }
        crate::MetricsAccess::Open => {}
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
        .into_response()
}

/// This document: the OpenAPI 3.1 description of every endpoint.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    Json(openapi::document())
}
