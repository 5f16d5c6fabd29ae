//! The layers around every route: the request id, the request's span and metrics, the
//! request timeout, and the answer to a panicking handler.

use std::any::Any;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::error::ApiError;
use crate::extract::RequestId;

/// The header carrying the request id, in and out.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client request id kept; longer or odd ones are replaced by a fresh UUID.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Gives the request its id, runs it in a span named after the matched route, and counts it.
/// The span carries the method, the matched path (never the raw URI, whose query could be
/// anything), the request id and the status; headers are never recorded.
pub(crate) async fn observe(mut req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_REQUEST_ID_LEN
                && v.bytes().all(|b| b.is_ascii_graphic())
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let method = method_label(req.method()).to_owned();
    // Unmatched requests share one label so scanners cannot blow up the metric cardinality.
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    req.extensions_mut().insert(RequestId(request_id.clone()));

    let span = tracing::info_span!(
        "http_request",
        method = %method,
        path = %path,
        request_id = %request_id,
        status = tracing::field::Empty,
    );
    // A caller's W3C trace context (`traceparent`, `tracestate`) makes this request's span a
    // child of the caller's; without an exporter installed this does nothing.
    let caller =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(req.headers())));
    if opentelemetry::trace::TraceContextExt::has_active_span(&caller) {
        let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, caller);
    }
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();

    span.record("status", status);
    span.in_scope(|| {
        let millis = elapsed.as_secs_f64() * 1000.0;
        if response.status().is_server_error() {
            tracing::warn!(status, millis, "Request finished");
        } else {
            tracing::info!(status, millis, "Request finished");
        }
    });
    metrics::counter!(
        "waiaas_http_requests_total",
        "method" => method.clone(),
        "path" => path.clone(),
        "status" => status.to_string(),
    )
    .increment(1);
    metrics::histogram!("waiaas_http_request_seconds", "method" => method, "path" => path)
        .record(elapsed.as_secs_f64());

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Request headers as OpenTelemetry's propagators read them.
struct Headers<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}

/// The metric label of a method: the standard ones by name, anything else as `other`, so a
/// client inventing methods cannot grow the metrics without bound.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Abandons a request that has not produced its response within the configured time. A
/// streaming body (server-sent events) is not bounded: only the time to the first byte is.
pub(crate) async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout_ms = limit.as_millis(),
                "Request timed out and was abandoned"
            );
            ApiError::timeout().into_response()
        }
    }
}

/// The answer to a handler that panicked: a 500 `internal`, with the panic logged.
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a non-string panic payload");
    ApiError::internal(anyhow::anyhow!("handler panicked: {detail}")).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    #[test]
    fn invented_methods_share_one_metric_label() {
        assert_eq!(super::method_label(&Method::POST), "POST");
        for invented in ["FOO", "BAR1", "PROPFIND"] {
            let m = Method::from_bytes(invented.as_bytes()).unwrap();
            assert_eq!(super::method_label(&m), "other");
        }
    }
}
