//! Unauthenticated operational endpoints: liveness, readiness, metrics and the OpenAPI
//! document.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::dto::{Liveness, ReadinessDto};
use crate::{ComponentStatus, SharedState, openapi};

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive", body = Liveness)))]
pub(crate) async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
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
        status,
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

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        (state.metrics)(),
    )
}

/// This document: the OpenAPI 3.1 description of every endpoint.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    Json(openapi::document())
}
