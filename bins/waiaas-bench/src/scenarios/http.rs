//! The HTTP service under load: `GET …/balance` and `POST …/transfers` against the real
//! router, closed loop and fixed rate, against a trivial axum handler served the same way by
//! the same process, under the same load generator.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Scale;
use crate::env::{self, wallet_id};
use crate::load::{RunStats, closed_loop, open_loop};

/// What the scenario measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpResults {
    /// Closed-loop concurrency.
    pub concurrency: usize,
    /// `GET /v1/wallets/{id}/balance`, closed loop.
    pub balance: RunStats,
    /// `POST /v1/wallets/{id}/transfers`, closed loop.
    pub transfers: RunStats,
    /// The trivial handler, closed loop.
    pub trivial: RunStats,
    /// Fixed request rate of the open-loop runs.
    pub rate: f64,
    /// `GET …/balance` at the fixed rate.
    pub balance_fixed: RunStats,
    /// The trivial handler at the fixed rate.
    pub trivial_fixed: RunStats,
    /// `balance.throughput / trivial.throughput`.
    pub balance_ratio: f64,
}

async fn serve(router: axum::Router) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok((format!("http://{addr}"), handle))
}

async fn expect_ok(r: Result<reqwest::Response, reqwest::Error>) -> Result<(), String> {
    let r = r.map_err(|e| e.to_string())?;
    let status = r.status();
    let _ = r.bytes().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

/// Runs the scenario.
///
/// # Errors
/// When the service cannot be started.
pub async fn run(scale: Scale) -> anyhow::Result<HttpResults> {
    let concurrency = 16;
    let wallets = if scale.quick { 200 } else { 1_000 };
    let seeded = env::seed(wallets, 8).await?;
    let app = env::instance(&seeded.db, Some(&env::redis_url()), 40).await?;
    let principal = waiaas_domain::Principal::Agent {
        agent_id: seeded.agent,
        owner_id: seeded.owner,
    };
    let audit = waiaas_domain::AuditContext::system();
    let (_, key) = app
        .services
        .create_agent_key(seeded.owner, seeded.agent, &audit)
        .await?;
    let (_, token) = app
        .services
        .create_session(&principal, key.expose(), &audit)
        .await?;
    let token = Arc::new(token.expose().to_owned());
    let (base, server) = serve(waiaas_app::serve::router(&app)).await?;
    let trivial_router =
        axum::Router::new().route("/noop", get(|| async { axum::Json(json!({ "ok": true })) }));
    let (trivial_base, trivial_server) = serve(trivial_router).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;

    let get_balance = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        move |i: u64| {
            let req = client
                .get(format!(
                    "{base}/v1/wallets/{}/balance",
                    wallet_id(i % 100 + 1)
                ))
                .bearer_auth(token.as_str());
            async move { expect_ok(req.send().await).await }
        }
    };
    let noop = {
        let (client, base) = (client.clone(), trivial_base.clone());
        move || {
            let req = client.get(format!("{base}/noop"));
            async move { expect_ok(req.send().await).await }
        }
    };

    let f = get_balance.clone();
    let balance = closed_loop(
        "HTTP GET balance",
        concurrency,
        scale.run,
        scale.quiet,
        move |w, n| f(w as u64 * 13 + n),
    )
    .await;
    let n = noop.clone();
    let trivial = closed_loop(
        "HTTP trivial handler",
        concurrency,
        scale.run,
        scale.quiet,
        move |_, _| n(),
    )
    .await;
    let transfers = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        closed_loop(
            "HTTP POST transfers",
            concurrency,
            scale.run,
            scale.quiet,
            move |_, _| {
                let (a, b, amount) = {
                    use rand::Rng as _;
                    let mut rng = rand::rng();
                    let a = rng.random_range(1..=wallets);
                    (
                        a,
                        (a + rng.random_range(1..wallets) - 1) % wallets + 1,
                        rng.random_range(1..=100_i64),
                    )
                };
                let req = client
                    .post(format!("{base}/v1/wallets/{}/transfers", wallet_id(a)))
                    .bearer_auth(token.as_str())
                    .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                    .json(&json!({ "amount": amount, "to_wallet_id": wallet_id(b) }));
                async move { expect_ok(req.send().await).await }
            },
        )
        .await
    };
    // The fixed rate: half of what the slower of the two sustained in the closed loop, capped,
    // so neither run is saturated and the latencies compare the work per request. (At 80 % of
    // the balance endpoint's closed-loop rate, a busy moment of this shared machine was enough
    // to make the open loop fall behind and report queueing instead of service time.)
    let rate = (trivial.throughput.min(balance.throughput) / 2.0).clamp(50.0, 5_000.0);
    let f = get_balance.clone();
    let balance_fixed = open_loop(
        "HTTP GET balance, fixed rate",
        rate,
        scale.run,
        scale.quiet,
        f,
    )
    .await;
    let n = noop.clone();
    let trivial_fixed = open_loop(
        "HTTP trivial, fixed rate",
        rate,
        scale.run,
        scale.quiet,
        move |_| n(),
    )
    .await;

    server.abort();
    trivial_server.abort();
    app.shutdown().await;
    Ok(HttpResults {
        concurrency,
        balance_ratio: balance.throughput / trivial.throughput.max(1e-9),
        balance,
        transfers,
        trivial,
        rate,
        balance_fixed,
        trivial_fixed,
    })
}
