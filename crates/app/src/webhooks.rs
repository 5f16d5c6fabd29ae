//! Webhook delivery workers. Every instance claims due deliveries from PostgreSQL under a
//! lease (no other worker takes them meanwhile; a worker that dies leaves them due again
//! when the lease ends), posts each event signed with its endpoint's secret, and records the
//! attempt: a 2xx within the timeout is success; anything else is retried with exponential
//! backoff and jitter until `give_up_after_s`, then the delivery fails and the owner is
//! notified. Only the oldest pending delivery of an endpoint and a wallet is ever due, so a
//! wallet's events reach an endpoint in order; a slow endpoint holds only its own requests
//! (a bounded number in flight, each with a timeout; redirects are not followed and answers'
//! bodies are not read).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng as _;
use waiaas_domain::ports::{Attempt, DeliveryQueue, DueDelivery};
use waiaas_domain::webhooks::{EVENT_ID_HEADER, SIGNATURE_HEADER, is_public_ip, sign};

use crate::settings::WebhookSettings;

/// How long a claim lasts: longer than a request may take.
fn lease(settings: &WebhookSettings) -> Duration {
    Duration::from_millis(settings.timeout_ms.saturating_mul(2).max(1_000)) + Duration::from_secs(5)
}

/// Resolves endpoint names and keeps only public addresses (unless private networks are
/// allowed): a name that resolves to an internal address is refused at every delivery, also
/// when its DNS changed after the endpoint was checked.
struct PublicOnly {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public_ip(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client deliveries go out with.
///
/// # Errors
/// When the TLS stack cannot be set up.
pub fn client(settings: &WebhookSettings) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(settings.timeout_ms.max(1)))
        .connect_timeout(Duration::from_millis(settings.timeout_ms.clamp(1, 5_000)))
        .dns_resolver(Arc::new(PublicOnly {
            allow_private: settings.allow_private_networks,
        }))
        .user_agent(concat!("WAIaaS-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// The body of a delivery: `{"id", "type", "created_at", "data": {"wallet_id", <subject>}}`,
/// the subject being `transaction` (holds included), `agent`, `api_key`, `session`, `policy`,
/// `budget` or `mandate`, as the change left it.
fn body(d: &DueDelivery, event: &waiaas_domain::Event) -> Vec<u8> {
    let mut data = serde_json::Map::new();
    data.insert(
        "wallet_id".to_owned(),
        serde_json::to_value(d.delivery.wallet_id).unwrap_or_default(),
    );
    data.insert(event.subject_name().to_owned(), event.record());
    serde_json::to_vec(&serde_json::json!({
        "id": event.id,
        "type": event.kind,
        "created_at": event.created_at,
        "data": data,
    }))
    .unwrap_or_default()
}

/// The delay before attempt `attempts + 1`: `base · 2^(attempts − 1)`, at most an hour,
/// ±20 % jitter.
fn backoff(base: Duration, attempts: u32) -> Duration {
    let exp = base.saturating_mul(1_u32 << attempts.saturating_sub(1).min(20));
    let capped = exp.min(Duration::from_secs(3_600));
    capped.mul_f64(rand::rng().random_range(0.8..1.2))
}

/// Sends one claimed delivery and says how it went (a span of its own: `webhook_delivery`).
#[tracing::instrument(
    name = "webhook_delivery",
    skip_all,
    fields(
        delivery_id = %d.delivery.id,
        webhook_id = %d.delivery.webhook_id,
        event_type = %d.delivery.event_type,
        attempt = d.delivery.attempts,
        status_code = tracing::field::Empty,
        delivered = tracing::field::Empty,
    )
)]
pub async fn attempt(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    d: &DueDelivery,
) -> Attempt {
    let (status_code, error, delivered) = match &d.event {
        None => (
            None,
            Some("the event was deleted by retention before it could be delivered".to_owned()),
            false,
        ),
        Some(event) => {
            let body = body(d, event);
            let signature = sign(&d.secret, Utc::now().timestamp(), &body);
            let sent = client
                .post(&d.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(EVENT_ID_HEADER, event.id.to_string())
                .header(SIGNATURE_HEADER, signature)
                .body(body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None, true),
                Ok(r) => (
                    Some(r.status().as_u16()),
                    Some(format!("the endpoint answered {}", r.status())),
                    false,
                ),
                Err(e) => (None, Some(describe(&e)), false),
            }
        }
    };
    let span = tracing::Span::current();
    if let Some(code) = status_code {
        span.record("status_code", code);
    }
    span.record("delivered", delivered);
    let next_attempt_at = if delivered || d.event.is_none() {
        None
    } else {
        let next = Utc::now()
            + backoff(
                Duration::from_millis(settings.retry_base_ms.max(1)),
                d.delivery.attempts,
            );
        let deadline = d.delivery.created_at
            + chrono::Duration::seconds(
                i64::try_from(settings.give_up_after_s).unwrap_or(i64::MAX / 1_000),
            );
        (next <= deadline).then_some(next)
    };
    Attempt {
        status_code,
        error,
        delivered,
        next_attempt_at,
    }
}

/// The cause chain of a request error in one line (no URL query, which may hold secrets).
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "the endpoint did not answer in time".to_owned()
    } else if e.is_connect() {
        "could not connect to the endpoint".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s.chars().take(500).collect()
}

/// Starts this instance's delivery workers.
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn spawn(
    queue: Arc<dyn DeliveryQueue>,
    settings: &WebhookSettings,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client = client(settings)?;
    let settings = settings.clone();
    let permits = Arc::new(tokio::sync::Semaphore::new(settings.concurrency.max(1)));
    Ok(tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(Duration::from_millis(settings.poll_interval_ms.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let free = u32::try_from(permits.available_permits()).unwrap_or(u32::MAX);
            if free == 0 {
                continue;
            }
            let due = match queue
                .claim(settings.batch.min(free).max(1), lease(&settings))
                .await
            {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "Claiming webhook deliveries failed; trying again");
                    continue;
                }
            };
            for d in due {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (queue, client, settings) = (queue.clone(), client.clone(), settings.clone());
                tokio::spawn(async move {
                    let outcome = attempt(&client, &settings, &d).await;
                    if outcome.delivered {
                        tracing::debug!(delivery_id = %d.delivery.id, event_id = d.delivery.event_id, "Webhook delivered");
                    } else {
                        tracing::info!(
                            delivery_id = %d.delivery.id,
                            event_id = d.delivery.event_id,
                            attempts = d.delivery.attempts,
                            status = ?outcome.status_code,
                            error = ?outcome.error,
                            given_up = outcome.next_attempt_at.is_none(),
                            "Webhook delivery failed"
                        );
                    }
                    if let Err(e) = queue.finish(&d, &outcome).await {
                        // The claim runs out and another attempt is made: at least once.
                        tracing::warn!(delivery_id = %d.delivery.id, error = %e, "Recording a webhook attempt failed");
                    }
                    drop(permit);
                });
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name that resolves only to private addresses is refused at connection time (the
    /// check a DNS change after the endpoint was registered cannot get around), unless
    /// private networks are allowed.
    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_not_connected_to() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let app = axum::Router::new().route("/", axum::routing::post(|| async { "ok" }));
            let _ = axum::serve(listener, app).await;
        });
        let url = format!("http://localhost:{port}/");
        let strict = client(&WebhookSettings::default()).unwrap();
        let refused = strict.post(&url).send().await.unwrap_err();
        assert!(
            describe(&refused).contains("no public address"),
            "{}",
            describe(&refused)
        );
        let open = client(&WebhookSettings {
            allow_private_networks: true,
            ..WebhookSettings::default()
        })
        .unwrap();
        assert!(open.post(&url).send().await.unwrap().status().is_success());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_an_hour() {
        let base = Duration::from_secs(5);
        for (attempts, nominal) in [(1, 5.0), (2, 10.0), (3, 20.0), (30, 3_600.0)] {
            let d = backoff(base, attempts).as_secs_f64();
            assert!(
                d >= nominal * 0.8 && d <= nominal * 1.2,
                "attempt {attempts}: {d}"
            );
        }
    }
}
