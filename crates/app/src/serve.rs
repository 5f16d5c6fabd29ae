//! `waiaas serve`: create and migrate the database, build the instance, serve HTTP until
//! SIGTERM or SIGINT, then finish the requests in flight and shut down cleanly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use waiaas_domain::ports::Rate;
use waiaas_http::{AppState, HttpConfig};

use crate::database::{self, MigrateAction};
use crate::health::Health;
use crate::settings::Settings;
use crate::wiring::{self, App};

/// The HTTP layer's settings.
#[must_use]
pub fn http_config(settings: &Settings) -> HttpConfig {
    HttpConfig {
        body_limit_bytes: settings.server.body_limit_bytes,
        request_timeout: Duration::from_millis(settings.server.request_timeout_ms),
        // An empty token (e.g. an unset variable in compose) disables owner registration.
        bootstrap_token: settings
            .auth
            .bootstrap_token
            .as_ref()
            .map(|t| t.expose_secret().trim().to_owned())
            .filter(|t| !t.is_empty()),
        rate: settings.rate_limit.enabled.then_some(Rate {
            per_second: settings.rate_limit.per_second,
            burst: settings.rate_limit.burst,
        }),
        auth_failure_rate: settings.rate_limit.enabled.then_some(Rate {
            per_second: settings.rate_limit.auth_failures_per_second,
            burst: settings.rate_limit.auth_failures_burst,
        }),
        // Checked when the settings were loaded.
        trusted_proxies: waiaas_http::TrustedProxies::parse(&settings.server.trusted_proxies)
            .unwrap_or_default(),
        metrics: match (
            &settings.server.metrics_listen,
            &settings.server.metrics_token,
        ) {
            (Some(_), _) => waiaas_http::MetricsAccess::Elsewhere,
            (None, Some(token)) => {
                waiaas_http::MetricsAccess::Token(token.expose_secret().to_owned())
            }
            (None, None) => waiaas_http::MetricsAccess::Open,
        },
    }
}

/// The router of an instance.
pub fn router(app: &App) -> axum::Router {
    waiaas_http::router(AppState {
        services: app.services.clone(),
        rate_limiter: app.rate_limiter.clone(),
        health: Arc::new(Health::new(app.db.clone(), app.redis.clone())),
        metrics: crate::metrics::renderer(),
        config: http_config(&app.settings),
        streams: app.streams.clone(),
        consistency: app.consistency.clone(),
    })
}

/// Prepares the database as the settings say (create if missing, migrate).
///
/// # Errors
/// When PostgreSQL cannot be reached or a migration fails.
pub async fn prepare_database(settings: &Settings) -> anyhow::Result<()> {
    let pg = settings.database.migration_pg();
    if settings.database.create_database {
        database::create_if_missing(&pg).await?;
    }
    if settings.database.auto_migrate {
        let db = database::connect_for_maintenance(&pg).await?;
        let report = database::migrate(&db, MigrateAction::Up).await?;
        tracing::info!(result = %report, "Migrations checked");
        crate::roles::regrant_if_present(&db, settings).await?;
        db.close().await?;
    }
    Ok(())
}

/// The longest pause between two attempts to reach PostgreSQL at start.
const MAX_START_RETRY: Duration = Duration::from_secs(30);

/// Runs `attempt` until PostgreSQL answers: each failure to reach it is logged at once (an
/// attempt gives up within the connect timeout) and retried after a pause that doubles up
/// to [`MAX_START_RETRY`]; a shutdown signal ends the wait. Other errors end it at once.
async fn until_reachable<T, F, Fut>(
    settings: &Settings,
    what: &str,
    mut attempt: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut pause = Duration::from_secs(1);
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if waiaas_postgres::is_connection_error(&e) => {
                tracing::error!(
                    database = %settings.database.pg().redacted_url(),
                    error = %format!("{e:#}"),
                    retry_in_s = pause.as_secs(),
                    "PostgreSQL unreachable while {what}; retrying"
                );
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shutdown_signal() => anyhow::bail!("stopped while waiting for PostgreSQL"),
                }
                pause = (pause * 2).min(MAX_START_RETRY);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs the service until a shutdown signal.
///
/// # Errors
/// When the database cannot be prepared or the address cannot be bound.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    until_reachable(&settings, "preparing the database", || {
        prepare_database(&settings)
    })
    .await?;
    let app = until_reachable(&settings, "opening the pool", || wiring::build(&settings)).await?;
    let listener = tokio::net::TcpListener::bind(&settings.server.listen)
        .await
        .with_context(|| format!("binding {}", settings.server.listen))?;
    if let Some(redis) = &app.redis
        && !redis.wait_connected(Duration::from_secs(1)).await
    {
        tracing::warn!("Redis unreachable: serving degraded from PostgreSQL until it is back");
    }
    let metrics = match &settings.server.metrics_listen {
        Some(at) => Some(serve_metrics(at, &settings).await?),
        None => None,
    };
    let tls = match (&settings.server.tls_cert, &settings.server.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(cert.as_ref(), key.as_ref())?),
        _ => None,
    };
    match tls {
        Some(config) => {
            run(
                crate::tls::TlsListener::new(listener, config)?,
                &app,
                &settings,
                "https",
            )
            .await?
        }
        None => run(listener, &app, &settings, "http").await?,
    }
    if let Some(task) = metrics {
        task.abort();
    }
    app.shutdown().await;
    tracing::info!("Stopped");
    Ok(())
}

/// Serves `/metrics` alone on `at` (`server.metrics_listen`), with `server.metrics_token`
/// required when set, until the task is aborted.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve_metrics(
    at: &str,
    settings: &Settings,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .with_context(|| format!("binding server.metrics_listen {at}"))?;
    tracing::info!(addr = %listener.local_addr()?, "Serving /metrics");
    let router = waiaas_http::metrics_router(
        crate::metrics::renderer(),
        settings
            .server
            .metrics_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
    );
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    }))
}

/// Serves `listener` until a shutdown signal, then gives requests in flight the grace period.
async fn run<L>(listener: L, app: &App, settings: &Settings, scheme: &str) -> anyhow::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let addr = listener.local_addr()?;
    tracing::info!(%addr, scheme, redis = settings.redis.enabled, "Listening");
    let router = router(app);
    let grace = Duration::from_millis(settings.server.shutdown_grace_ms);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let streams = app.streams.clone();
    // `tap_io` gives any listener's connections their peer address as `ConnectInfo`.
    let server = axum::serve(
        axum::serve::ListenerExt::tap_io(listener, |_| {}),
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!(
            streams = streams.open(),
            "Shutting down: ending event streams, finishing requests in flight"
        );
        // Streams never finish by themselves: they end now, so the grace period is the
        // requests' alone.
        streams.close_all();
        let _ = tx.send(());
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        r = &mut server => r?,
        _ = rx => {
            // Requests in flight get the grace period; then the process ends regardless.
            if tokio::time::timeout(grace, &mut server).await.is_err() {
                tracing::warn!(grace_ms = grace.as_millis() as u64, "Requests still running after the grace period");
            }
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
