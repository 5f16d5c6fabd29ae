//! The Prometheus recorder, installed once per process (tests run several instances in one):
//! latencies as histograms with fixed buckets (they add up across instances, as summaries
//! do not), HELP text for every metric, and upkeep every 5 s so samples do not pile up
//! between scrapes.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets, in seconds: 1 ms to 10 s.
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every metric this service records, with its HELP text.
pub const DESCRIBED: [(&str, &str); 35] = [
    (
        "waiaas_http_requests_total",
        "HTTP requests answered, by method, matched route and status",
    ),
    (
        "waiaas_http_request_seconds",
        "HTTP request latency, by method and matched route",
    ),
    ("waiaas_http_rate_limited_total", "Requests answered 429"),
    (
        "waiaas_http_rate_limiter_errors_total",
        "Rate limiter lookups that failed (the request went through)",
    ),
    (
        "waiaas_http_auth_failures_blocked_total",
        "Addresses blocked for failed authentications",
    ),
    (
        "waiaas_cache_requests_total",
        "Cache reads, by kind and result",
    ),
    (
        "waiaas_cache_loads_total",
        "Loads from PostgreSQL after a cache miss, by kind",
    ),
    (
        "waiaas_cache_shared_loads_total",
        "Misses answered by another request's load (single flight)",
    ),
    (
        "waiaas_cache_flight_retries_total",
        "Single-flight waits that loaded again",
    ),
    (
        "waiaas_cache_fills_total",
        "Cache fills, by kind and outcome",
    ),
    (
        "waiaas_cache_writes_total",
        "Write-throughs, by kind and outcome",
    ),
    (
        "waiaas_cache_errors_total",
        "Redis errors met by the cache, by operation",
    ),
    (
        "waiaas_cache_skipped_total",
        "Cache operations skipped while Redis was unavailable",
    ),
    (
        "waiaas_cache_fences_total",
        "Fences raised after a failed write-through",
    ),
    ("waiaas_cache_fence_seconds", "Time to raise a fence"),
    (
        "waiaas_cache_l1_bypassed_total",
        "In-process cache reads bypassed while the event bus was down",
    ),
    (
        "waiaas_breaker_state",
        "Circuit breaker state by dependency: 0 closed, 1 half-open, 2 open",
    ),
    (
        "waiaas_breaker_transitions_total",
        "Circuit breaker transitions, by dependency and state",
    ),
    (
        "waiaas_fallback_calls_total",
        "Calls served by an in-process fallback while Redis was down",
    ),
    (
        "waiaas_events_dropped_total",
        "Live events dropped for a slow subscriber (it resumes from PostgreSQL)",
    ),
    (
        "waiaas_posting_batches_total",
        "Batches posted by the posting workers",
    ),
    (
        "waiaas_posting_batched_total",
        "Postings carried by those batches",
    ),
    (
        "waiaas_posting_batches_split_total",
        "Batches posted one by one instead, by reason",
    ),
    (
        "waiaas_ledger_sealed_total",
        "Rows sealed into the tamper-evident chain",
    ),
    (
        "waiaas_db_pool_connections",
        "PostgreSQL connections of this instance's pool, by state (in_use, idle)",
    ),
    ("waiaas_db_pool_max_connections", "The pool's maximum size"),
    (
        "waiaas_db_pool_waiters",
        "Tasks waiting now for a PostgreSQL connection, by share of the pool (writers: postings and other writes queued behind the writers' share)",
    ),
    (
        "waiaas_db_slow_statements_total",
        "Statements slower than database.slow_statement_ms (each is also logged at WARN by sqlx::query)",
    ),
    (
        "waiaas_db_replica_lag_seconds",
        "How far each read replica is behind the primary, in seconds (0 when it has replayed all it received)",
    ),
    (
        "waiaas_db_replica_up",
        "Whether each read replica answered the last check (1) or not (0)",
    ),
    (
        "waiaas_db_replica_reads_total",
        "Replica-safe reads (listings), by where they were served: a replica, or the primary because every replica was behind the read's consistency token, unavailable, or failed the read",
    ),
    (
        "waiaas_db_writer_permits_available",
        "Connections writers may still take (0: writers wait)",
    ),
    (
        "waiaas_outbox_unplaced_events",
        "Committed events not yet placed in the stream",
    ),
    (
        "waiaas_outbox_lag_seconds",
        "Age of the oldest event not yet placed in the stream",
    ),
    (
        "waiaas_webhook_deliveries_pending",
        "Webhook deliveries waiting to be sent",
    ),
];

/// Renders the process's metrics in Prometheus text format.
#[must_use]
pub fn renderer() -> Arc<dyn Fn() -> String + Send + Sync> {
    let handle = HANDLE.get_or_init(|| {
        let built = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .and_then(PrometheusBuilder::install_recorder);
        match built {
            Ok(h) => {
                for (name, help) in DESCRIBED {
                    metrics::describe_counter!(name, help);
                }
                let upkeep = h.clone();
                let _ = std::thread::Builder::new()
                    .name("metrics-upkeep".to_owned())
                    .spawn(move || {
                        loop {
                            std::thread::sleep(Duration::from_secs(5));
                            upkeep.run_upkeep();
                        }
                    });
                Some(h)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Metrics recorder not installed");
                None
            }
        }
    });
    match handle.clone() {
        Some(h) => Arc::new(move || h.render()),
        None => Arc::new(String::new),
    }
}

/// What the gauges read from PostgreSQL: the outbox's backlog and age, pending deliveries
/// (each on a partial index, so cheap however large the tables). The age is that of the
/// first unplaced event written (the one the relay places first), found by id: a
/// `min(created_at)` could be planned as a walk of the `created_at` index over every placed
/// event (seen when the statistics still counted a backlog the relay had since placed: the
/// whole table read every five seconds).
const BACKLOG: &str = "SELECT (SELECT count(*) FROM events WHERE seq IS NULL) AS unplaced, \
COALESCE((SELECT EXTRACT(EPOCH FROM now() - created_at) FROM events WHERE seq IS NULL ORDER BY id LIMIT 1), 0)::float8 AS lag, \
(SELECT count(*) FROM webhook_deliveries WHERE status = 'pending') AS pending";

/// Sets the pool, replica and backlog gauges every 5 s, until aborted.
pub fn spawn_gauges(
    db: sea_orm::DatabaseConnection,
    pg: Arc<waiaas_postgres::Postgres>,
) -> tokio::task::JoinHandle<()> {
    use sea_orm::ConnectionTrait as _;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let pool = db.get_postgres_connection_pool();
            let (size, idle) = (
                pool.size(),
                u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            );
            metrics::gauge!("waiaas_db_pool_connections", "state" => "in_use")
                .set(f64::from(size.saturating_sub(idle)));
            metrics::gauge!("waiaas_db_pool_connections", "state" => "idle").set(f64::from(idle));
            metrics::gauge!("waiaas_db_pool_max_connections")
                .set(f64::from(pool.options().get_max_connections()));
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("waiaas_db_writer_permits_available")
                .set(pg.writer_permits_available() as f64);
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("waiaas_db_pool_waiters", "share" => "writers")
                .set(pg.writers_waiting() as f64);
            for (replica, lag) in pg.replica_lags().await {
                let name = replica.to_string();
                metrics::gauge!("waiaas_db_replica_up", "replica" => name.clone())
                    .set(if lag.is_some() { 1.0 } else { 0.0 });
                if let Some(lag) = lag {
                    metrics::gauge!("waiaas_db_replica_lag_seconds", "replica" => name).set(lag);
                }
            }
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    BACKLOG,
                ))
                .await;
            match row {
                Ok(Some(r)) => {
                    let get = |c: &str| r.try_get::<i64>("", c).unwrap_or(0);
                    #[allow(clippy::cast_precision_loss)]
                    {
                        metrics::gauge!("waiaas_outbox_unplaced_events")
                            .set(get("unplaced") as f64);
                        metrics::gauge!("waiaas_webhook_deliveries_pending")
                            .set(get("pending") as f64);
                    }
                    metrics::gauge!("waiaas_outbox_lag_seconds")
                        .set(r.try_get::<f64>("", "lag").unwrap_or(0.0));
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "Backlog gauges not read"),
            }
        }
    })
}
