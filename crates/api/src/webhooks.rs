//! Webhook endpoints and their deliveries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
#[cfg(feature = "domain")]
use waiaas_domain::webhooks::{Delivery, Webhook};

/// `POST /v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// Where events are posted: an absolute `https://` URL (at most 2048 characters) whose
    /// host resolves to public addresses.
    #[cfg_attr(feature = "openapi", schema(max_length = 2048))]
    pub url: String,
    /// The event types to receive (1–50, see the API reference), or `["*"]` for all.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 50))]
    pub events: Vec<String>,
    /// A note for the owner (at most 500 characters).
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub description: Option<String>,
}

/// `PATCH /v1/webhooks/{id}`: only the fields given change (`"description": null` removes
/// it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookPatchBody {
    /// A new URL.
    #[cfg_attr(feature = "openapi", schema(max_length = 2048))]
    pub url: Option<String>,
    /// New event types.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 50))]
    pub events: Option<Vec<String>>,
    /// A new description, or `null` to remove it.
    #[serde(
        default,
        deserialize_with = "some_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 500))]
    pub description: Option<Option<String>>,
    /// Whether new events are delivered to it.
    pub enabled: Option<bool>,
}

/// Tells a field that is absent (`None`) from one that is `null` (`Some(None)`).
fn some_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WebhookDto {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(feature = "domain")]
impl From<Webhook> for WebhookDto {
    fn from(w: Webhook) -> Self {
        Self {
            id: *w.id.as_uuid(),
            url: w.url,
            events: w.events,
            description: w.description,
            enabled: w.enabled,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A webhook endpoint with its signing secret: shown once, when made or rotated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WebhookWithSecretDto {
    #[serde(flatten)]
    pub webhook: WebhookDto,
    /// The signing secret (`whsec_…`): verify `WAIaaS-Signature` with it. Shown only now.
    pub secret: String,
}

/// One event's delivery to an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DeliveryDto {
    pub id: Uuid,
    /// The event's id (also sent as `WAIaaS-Event-Id`).
    pub event_id: i64,
    pub event_type: String,
    /// The wallet the event concerns; `null` for an agent's, a key's, a session's or a
    /// budget's event.
    pub wallet_id: Option<Uuid>,
    /// The transaction the event is about; `null` for other events.
    pub transaction_id: Option<Uuid>,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    /// When a pending delivery is tried next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[cfg(feature = "domain")]
impl From<Delivery> for DeliveryDto {
    fn from(d: Delivery) -> Self {
        Self {
            id: *d.id.as_uuid(),
            event_id: d.event_id,
            event_type: d.event_type,
            wallet_id: d.wallet_id.map(|w| *w.as_uuid()),
            transaction_id: d.transaction_id.map(|t| *t.as_uuid()),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
            finished_at: d.finished_at,
        }
    }
}

/// `GET /v1/webhooks/{id}/deliveries`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct DeliveryQuery {
    /// At most this many (1–200, default 50).
    pub limit: Option<u32>,
    /// Only deliveries of events before this event id (the next page).
    pub before: Option<i64>,
}
