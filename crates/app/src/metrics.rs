//! The Prometheus recorder, installed once per process (tests run several instances in one).

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Renders the process's metrics in Prometheus text format.
#[must_use]
pub fn renderer() -> Arc<dyn Fn() -> String + Send + Sync> {
    let handle = HANDLE.get_or_init(|| match PrometheusBuilder::new().install_recorder() {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "Metrics recorder not installed");
            None
        }
    });
    match handle.clone() {
        Some(h) => Arc::new(move || h.render()),
        None => Arc::new(String::new),
    }
}
