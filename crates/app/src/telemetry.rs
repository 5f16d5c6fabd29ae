//! Logs: `tracing` to stderr, text or JSON, filtered by `RUST_LOG` or the settings. Text
//! carries colour codes only when stderr is a terminal (a log file or collector gets plain
//! text). Beside the log, slow statements are counted for `/metrics`, whatever the filter.
//! With `telemetry.otlp_endpoint` set, spans also go to an OpenTelemetry collector over
//! OTLP/HTTP (batched, on the exporter's own thread), through a filter of their own, and
//! requests carrying a W3C `traceparent` continue the caller's trace.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry};

use crate::settings::TelemetrySettings;

/// Where SQLx reports each statement; statements over `database.slow_statement_ms` at WARN.
const SQLX_QUERY: &str = "sqlx::query";

/// Counts the statements SQLx reports as slow (`waiaas_db_slow_statements_total`).
struct SlowStatements;

impl<S: Subscriber> Layer<S> for SlowStatements {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if meta.target() == SQLX_QUERY && *meta.level() == Level::WARN {
            metrics::counter!("waiaas_db_slow_statements_total").increment(1);
        }
    }
}

/// The tracer provider exporting spans, when `telemetry.otlp_endpoint` is set.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The OTLP exporter and its provider, from the settings (`None` when no endpoint is set).
///
/// # Errors
/// An endpoint that is not a URL, or a filter that does not parse.
fn otlp(settings: &TelemetrySettings) -> anyhow::Result<Option<(SdkTracerProvider, Targets)>> {
    let endpoint = settings.otlp_endpoint.trim();
    if endpoint.is_empty() {
        return Ok(None);
    }
    let targets: Targets = settings
        .otlp_filter
        .parse()
        .map_err(|e| anyhow::anyhow!("telemetry.otlp_filter: {e}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|e| anyhow::anyhow!("telemetry.otlp_endpoint {endpoint:?}: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build();
    Ok(Some((provider, targets)))
}

/// Checks the telemetry settings without installing anything.
///
/// # Errors
/// An OTLP endpoint that is not an `http://` or `https://` URL, or an OTLP filter that does
/// not parse.
pub fn validate(settings: &TelemetrySettings) -> anyhow::Result<()> {
    let endpoint = settings.otlp_endpoint.trim();
    if endpoint.is_empty() {
        return Ok(());
    }
    let uri: axum::http::Uri = endpoint
        .parse()
        .map_err(|e| anyhow::anyhow!("telemetry.otlp_endpoint {endpoint:?}: {e}"))?;
    anyhow::ensure!(
        matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some(),
        "telemetry.otlp_endpoint {endpoint:?}: an http:// or https:// URL with a host"
    );
    settings
        .otlp_filter
        .parse::<Targets>()
        .map_err(|e| anyhow::anyhow!("telemetry.otlp_filter: {e}"))?;
    Ok(())
}

/// Sends the spans still buffered and stops the exporter (at exit; nothing without one).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        eprintln!("warning: flushing the last traces failed: {e}");
    }
}

/// Installs the global subscriber once; later calls do nothing (tests call it repeatedly).
/// Settings are checked beforehand ([`validate`], part of `Settings::validated`); an
/// exporter that cannot be built all the same is reported on stderr, and the service runs
/// without traces.
pub fn init(settings: &TelemetrySettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    let ansi = std::io::stderr().is_terminal();
    // The counter has its own filter: a log filter that hides SQLx's warnings does not hide
    // them from it.
    let slow = SlowStatements.with_filter(Targets::new().with_target(SQLX_QUERY, Level::WARN));
    // So do the traces: a quiet log still exports every span the trace filter asks for.
    let exporter = otlp(settings).unwrap_or_else(|e| {
        eprintln!("warning: no traces will be exported: {e:#}");
        None
    });
    let traces = match exporter {
        Some((provider, targets)) if PROVIDER.set(provider.clone()).is_ok() => {
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            let tracer = provider.tracer("waiaas");
            Some(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(targets),
            )
        }
        _ => None,
    };
    let registry = Registry::default().with(traces).with(slow);
    let _ = if settings.format == "json" {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi)
                    .with_filter(filter),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi)
                    .with_filter(filter),
            )
            .try_init()
    };
}
