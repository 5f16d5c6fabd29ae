//! Logs: `tracing` to stderr, text or JSON, filtered by `RUST_LOG` or the settings. Text
//! carries colour codes only when stderr is a terminal (a log file or collector gets plain
//! text).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::settings::TelemetrySettings;

/// Installs the global subscriber once; later calls do nothing (tests call it repeatedly).
pub fn init(settings: &TelemetrySettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if settings.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
