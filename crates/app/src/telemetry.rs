//! Logs: `tracing` to stderr, text or JSON, filtered by `RUST_LOG` or the settings. Text
//! carries colour codes only when stderr is a terminal (a log file or collector gets plain
//! text). Beside the log, slow statements are counted for `/metrics`, whatever the filter.

use std::io::IsTerminal as _;

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

/// Installs the global subscriber once; later calls do nothing (tests call it repeatedly).
pub fn init(settings: &TelemetrySettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    let ansi = std::io::stderr().is_terminal();
    // The counter has its own filter: a log filter that hides SQLx's warnings does not hide
    // them from it.
    let slow = SlowStatements.with_filter(Targets::new().with_target(SQLX_QUERY, Level::WARN));
    let registry = Registry::default().with(slow);
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
