//! What a Prometheus server scrapes: latencies as histograms with buckets (they add up across
//! instances), HELP for every metric, the pool and backlog gauges; and every metric the
//! alert rules of docker/prometheus/alerts.yml and the Grafana dashboard of
//! docker/grafana/dashboards name is one the service records.

use std::time::Duration;

use reqwest::StatusCode;
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

#[tokio::test]
async fn metrics_are_histograms_with_help_and_every_alert_and_dashboard_panel_names_a_recorded_metric()
 {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    assert_eq!(app.get("/v1/agents", &owner).await.status, StatusCode::OK);
    // The gauges are set when the instance starts, then every 5 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = app.metrics().await;
        if text.contains("waiaas_outbox_lag_seconds") || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for expected in [
        "# TYPE waiaas_http_request_seconds histogram",
        "waiaas_http_request_seconds_bucket{",
        "le=\"0.005\"",
        "# HELP waiaas_http_requests_total ",
        "waiaas_db_pool_connections{state=\"in_use\"}",
        "waiaas_db_pool_connections{state=\"idle\"}",
        "waiaas_db_pool_max_connections ",
        "waiaas_db_writer_permits_available ",
        "waiaas_db_pool_waiters{share=\"writers\"} 0",
        "waiaas_outbox_lag_seconds ",
        "waiaas_outbox_unplaced_events ",
        "waiaas_webhook_deliveries_pending ",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(
        !text.contains("quantile=\""),
        "latencies are still summaries:\n{text}"
    );

    for (file, at_least) in [
        ("prometheus/alerts.yml", 8),
        ("grafana/dashboards/waiaas.json", 14),
    ] {
        let path = format!("{}/../docker/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        if file.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(&text).expect("the dashboard is JSON");
        }
        let named = recorded_metrics_named(&text, file);
        assert!(named >= at_least, "{file} names {named} metric(s)");
    }
    app.stop().await;
}

/// How many metric names `text` holds, each checked to be one the service records.
fn recorded_metrics_named(text: &str, what: &str) -> usize {
    let described: Vec<&str> = waiaas_app::metrics::DESCRIBED
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let mut named = 0;
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if let Some(name) = word.strip_prefix("waiaas_") {
            if name.is_empty() {
                continue;
            }
            let name = format!("waiaas_{}", name.trim_end_matches("_bucket"));
            let name = if described.contains(&name.as_str()) {
                name
            } else {
                name.trim_end_matches("_count")
                    .trim_end_matches("_sum")
                    .to_owned()
            };
            assert!(
                described.contains(&name.as_str()),
                "{what} names {name}, which the service does not record"
            );
            named += 1;
        }
    }
    named
}
