//! Webhooks: an owner's endpoints for the outbox's events, and their deliveries.

use super::Services;
use crate::errors::AccessError;
use crate::ids::{DeliveryId, WebhookId};
use crate::model::{AuditContext, Principal, Secret};
use crate::ports::WebhookPatch;
use crate::webhooks::{
    Delivery, EVENT_TYPES, MAX_DESCRIPTION_LEN, MAX_EVENT_TYPES, SECRET_PREFIX, UrlError, Webhook,
    check_url,
};

/// The most endpoints one owner may have.
pub const MAX_WEBHOOKS: u32 = 20;

/// A new endpoint, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// Where events are posted.
    pub url: String,
    /// The event types (`["*"]` for all).
    pub events: Vec<String>,
    /// The owner's note.
    pub description: Option<String>,
}

impl Services {
    fn owner_of(principal: &Principal) -> Result<crate::ids::OwnerId, AccessError> {
        match principal {
            Principal::Owner { owner_id } => Ok(*owner_id),
            Principal::Agent { .. } => {
                Err(AccessError::Forbidden("only the owner manages webhooks"))
            }
        }
    }

    fn check_webhook_url(&self, url: &str) -> Result<(), AccessError> {
        check_url(url, self.settings.webhook_private_networks).map_err(|e| match e {
            UrlError::Malformed => AccessError::Invalid(
                "`url` must be an absolute https:// URL of at most 2048 characters, with a host and no credentials",
            ),
            UrlError::NotPublic => AccessError::Invalid(
                "`url` must point at a public address (private networks are not allowed)",
            ),
        })
    }

    /// Makes a new endpoint; returns it with its signing secret (shown once).
    ///
    /// # Errors
    /// `Forbidden` for an agent; `Invalid` for a bad URL, event list or description, or an
    /// owner that already has [`MAX_WEBHOOKS`].
    pub async fn create_webhook(
        &self,
        principal: &Principal,
        req: WebhookRequest,
        audit: &AuditContext,
    ) -> Result<(Webhook, Secret), AccessError> {
        let owner_id = Self::owner_of(principal)?;
        self.check_webhook_url(&req.url)?;
        let events = check_events(req.events)?;
        let description = check_description(req.description)?;
        let now = self.ports.clock.now();
        let webhook = Webhook {
            id: WebhookId::new(),
            owner_id,
            url: req.url,
            events,
            description,
            enabled: true,
            created_at: now,
            updated_at: now,
        };
        let secret = Secret::generate(SECRET_PREFIX);
        let made = self
            .ports
            .webhooks
            .create_webhook(&webhook, secret.expose(), MAX_WEBHOOKS, audit)
            .await?;
        if !made {
            return Err(AccessError::Invalid(
                "an owner may have at most 20 webhook endpoints",
            ));
        }
        Ok((webhook, secret))
    }

    /// The owner's endpoints, newest first.
    ///
    /// # Errors
    /// `Forbidden` for an agent.
    pub async fn list_webhooks(&self, principal: &Principal) -> Result<Vec<Webhook>, AccessError> {
        let owner_id = Self::owner_of(principal)?;
        Ok(self.ports.webhooks.list_webhooks(owner_id).await?)
    }

    /// One of the owner's endpoints.
    ///
    /// # Errors
    /// `Forbidden` for an agent, `NotFound` for one not the owner's.
    pub async fn get_webhook(
        &self,
        principal: &Principal,
        id: WebhookId,
    ) -> Result<Webhook, AccessError> {
        let owner_id = Self::owner_of(principal)?;
        self.ports
            .webhooks
            .get_webhook(owner_id, id)
            .await?
            .ok_or(AccessError::NotFound)
    }

    /// Changes an endpoint's URL, event types, description or whether it is enabled.
    ///
    /// # Errors
    /// As [`Self::create_webhook`], and `NotFound`.
    pub async fn update_webhook(
        &self,
        principal: &Principal,
        id: WebhookId,
        patch: WebhookPatch,
        audit: &AuditContext,
    ) -> Result<Webhook, AccessError> {
        let owner_id = Self::owner_of(principal)?;
        if let Some(url) = &patch.url {
            self.check_webhook_url(url)?;
        }
        let patch = WebhookPatch {
            events: patch.events.map(check_events).transpose()?,
            description: patch.description.map(check_description).transpose()?,
            ..patch
        };
        self.ports
            .webhooks
            .update_webhook(owner_id, id, &patch, None, audit)
            .await?
            .ok_or(AccessError::NotFound)
    }

    /// Gives an endpoint a new signing secret (shown once); the old one stops signing at once.
    ///
    /// # Errors
    /// `Forbidden` for an agent, `NotFound`.
    pub async fn rotate_webhook_secret(
        &self,
        principal: &Principal,
        id: WebhookId,
        audit: &AuditContext,
    ) -> Result<(Webhook, Secret), AccessError> {
        let owner_id = Self::owner_of(principal)?;
        let secret = Secret::generate(SECRET_PREFIX);
        let webhook = self
            .ports
            .webhooks
            .update_webhook(
                owner_id,
                id,
                &WebhookPatch::default(),
                Some(secret.expose().to_owned()),
                audit,
            )
            .await?
            .ok_or(AccessError::NotFound)?;
        Ok((webhook, secret))
    }

    /// Deletes an endpoint and its deliveries.
    ///
    /// # Errors
    /// `Forbidden` for an agent, `NotFound`.
    pub async fn delete_webhook(
        &self,
        principal: &Principal,
        id: WebhookId,
        audit: &AuditContext,
    ) -> Result<(), AccessError> {
        let owner_id = Self::owner_of(principal)?;
        if self
            .ports
            .webhooks
            .delete_webhook(owner_id, id, audit)
            .await?
        {
            Ok(())
        } else {
            Err(AccessError::NotFound)
        }
    }

    /// An endpoint's deliveries, newest event first.
    ///
    /// # Errors
    /// `Forbidden` for an agent, `NotFound`.
    pub async fn webhook_deliveries(
        &self,
        principal: &Principal,
        id: WebhookId,
        limit: Option<u32>,
        before: Option<i64>,
    ) -> Result<Vec<Delivery>, AccessError> {
        let webhook = self.get_webhook(principal, id).await?;
        Ok(self
            .ports
            .webhooks
            .deliveries(webhook.owner_id, id, super::page_limit(limit), before)
            .await?)
    }

    /// Sends a delivery again now (a failed one starts a new 24 hours of attempts).
    ///
    /// # Errors
    /// `Forbidden` for an agent, `NotFound` (also for a delivery already delivered).
    pub async fn retry_delivery(
        &self,
        principal: &Principal,
        id: WebhookId,
        delivery: DeliveryId,
        audit: &AuditContext,
    ) -> Result<Delivery, AccessError> {
        let owner_id = Self::owner_of(principal)?;
        self.ports
            .webhooks
            .retry_delivery(owner_id, id, delivery, audit)
            .await?
            .ok_or(AccessError::NotFound)
    }
}

fn check_events(events: Vec<String>) -> Result<Vec<String>, AccessError> {
    if events.is_empty() || events.len() > MAX_EVENT_TYPES {
        return Err(AccessError::Invalid(
            "`events` must list 1 to 50 event types, or [\"*\"]",
        ));
    }
    if events
        .iter()
        .any(|e| e != "*" && !EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(AccessError::Invalid(
            "`events` holds an unknown event type (see the list in the API reference)",
        ));
    }
    let mut events = events;
    events.sort();
    events.dedup();
    Ok(events)
}

fn check_description(d: Option<String>) -> Result<Option<String>, AccessError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_LEN || d.chars().any(char::is_control) => {
            Err(AccessError::Invalid(
                "`description` must be at most 500 characters, without control characters",
            ))
        }
        d => Ok(d),
    }
}
