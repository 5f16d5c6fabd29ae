//! Webhook endpoints and their deliveries. Deliveries are made when the relay places an
//! event (`repo::events`), one per matching endpoint; workers of every instance claim due
//! ones under a lease, only the oldest pending one per endpoint and wallet, so each goes out
//! in order and, while its worker lives, from one worker only.

use crate::pool::Begin as _;
use async_trait::async_trait;
use chrono::Utc;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};
use uuid::Uuid;
use waiaas_domain::notifications::NotificationKind;
use waiaas_domain::ports::{Attempt, DeliveryQueue, DueDelivery, WebhookPatch, WebhookRepository};
use waiaas_domain::webhooks::{Delivery, DeliveryStatus, Webhook};
use waiaas_domain::{
    AuditContext, DeliveryId, NewAuditEntry, OwnerId, RepoError, TransactionId, WalletId, WebhookId,
};

use crate::error::RepoContext as _;
use crate::{Postgres, Work};

const COLUMNS: &str = "id, owner_id, url, events, description, enabled, created_at, updated_at";

const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.event_seq, d.event_type, d.wallet_id, \
d.transaction_id, d.status, d.attempts, d.last_status_code, d.last_error, d.next_attempt_at, \
d.created_at, d.finished_at";

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn events_value(events: &[String]) -> Value {
    Value::Array(
        sea_orm::sea_query::ArrayType::String,
        Some(Box::new(events.iter().map(|e| e.clone().into()).collect())),
    )
}

fn webhook(row: &QueryResult) -> Result<Webhook, RepoError> {
    let get = |what| move |e| RepoError(anyhow::Error::new(e).context(what));
    Ok(Webhook {
        id: WebhookId::from_uuid(row.try_get("", "id").map_err(get("webhook id"))?),
        owner_id: OwnerId::from_uuid(row.try_get("", "owner_id").map_err(get("owner"))?),
        url: row.try_get("", "url").map_err(get("url"))?,
        events: row.try_get("", "events").map_err(get("events"))?,
        description: row.try_get("", "description").map_err(get("description"))?,
        enabled: row.try_get("", "enabled").map_err(get("enabled"))?,
        created_at: row.try_get("", "created_at").map_err(get("created_at"))?,
        updated_at: row.try_get("", "updated_at").map_err(get("updated_at"))?,
    })
}

fn delivery(row: &QueryResult) -> Result<Delivery, RepoError> {
    let get = |what| move |e| RepoError(anyhow::Error::new(e).context(what));
    let status: String = row.try_get("", "status").map_err(get("status"))?;
    let attempts: i32 = row.try_get("", "attempts").map_err(get("attempts"))?;
    let code: Option<i32> = row
        .try_get("", "last_status_code")
        .map_err(get("status code"))?;
    Ok(Delivery {
        id: DeliveryId::from_uuid(row.try_get("", "id").map_err(get("delivery id"))?),
        webhook_id: WebhookId::from_uuid(row.try_get("", "webhook_id").map_err(get("webhook"))?),
        event_id: row.try_get("", "event_seq").map_err(get("event"))?,
        event_type: row.try_get("", "event_type").map_err(get("event type"))?,
        wallet_id: row
            .try_get::<Option<Uuid>>("", "wallet_id")
            .map_err(get("wallet"))?
            .map(WalletId::from_uuid),
        transaction_id: row
            .try_get::<Option<Uuid>>("", "transaction_id")
            .map_err(get("transaction"))?
            .map(TransactionId::from_uuid),
        status: DeliveryStatus::from_db(&status)
            .ok_or_else(|| RepoError(anyhow::anyhow!("unknown delivery status {status}")))?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_status_code: code.and_then(|c| u16::try_from(c).ok()),
        last_error: row.try_get("", "last_error").map_err(get("last error"))?,
        next_attempt_at: if status == "pending" {
            row.try_get("", "next_attempt_at")
                .map_err(get("next attempt"))?
        } else {
            None
        },
        created_at: row.try_get("", "created_at").map_err(get("created_at"))?,
        finished_at: row.try_get("", "finished_at").map_err(get("finished_at"))?,
    })
}

async fn audit<C: ConnectionTrait>(
    conn: &C,
    ctx: &AuditContext,
    owner: OwnerId,
    action: &'static str,
    id: WebhookId,
    old: Option<&Webhook>,
    new: Option<&Webhook>,
) -> Result<(), RepoError> {
    crate::audit::record(
        conn,
        ctx,
        NewAuditEntry {
            owner_id: Some(owner),
            action,
            resource_type: "webhook",
            resource_id: id.to_string(),
            old_value: old.map(|w| serde_json::json!(w)),
            new_value: new.map(|w| serde_json::json!(w)),
        },
        Utc::now(),
    )
    .await
    .repo("auditing a webhook change")
}

#[async_trait]
impl WebhookRepository for Postgres {
    async fn create_webhook(
        &self,
        w: &Webhook,
        secret: &str,
        max: u32,
        ctx: &AuditContext,
    ) -> Result<bool, RepoError> {
        self.run(Work::Write, || async {
            let txn = self.db.start().await.repo("beginning a webhook")?;
            // The owner's row lock serialises concurrent creations, so the count holds.
            txn.execute_raw(stmt(
                "SELECT 1 FROM owners WHERE id = $1 FOR UPDATE",
                vec![(*w.owner_id.as_uuid()).into()],
            ))
            .await
            .repo("locking the owner")?;
            let count = txn
                .query_one_raw(stmt(
                    "SELECT count(*) AS n FROM webhooks WHERE owner_id = $1",
                    vec![(*w.owner_id.as_uuid()).into()],
                ))
                .await
                .repo("counting webhooks")?
                .map(|r| r.try_get::<i64>("", "n"))
                .transpose()
                .repo("counting webhooks")?
                .unwrap_or(0);
            if count >= i64::from(max) {
                return Ok(false);
            }
            txn.execute_raw(stmt(
                "INSERT INTO webhooks (id, owner_id, url, events, description, secret, enabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                vec![
                    (*w.id.as_uuid()).into(),
                    (*w.owner_id.as_uuid()).into(),
                    w.url.clone().into(),
                    events_value(&w.events),
                    w.description.clone().into(),
                    secret.to_owned().into(),
                    w.enabled.into(),
                    w.created_at.into(),
                    w.updated_at.into(),
                ],
            ))
            .await
            .repo("storing a webhook")?;
            audit(&txn, ctx, w.owner_id, "webhook.create", w.id, None, Some(w)).await?;
            txn.commit().await.repo("committing a webhook")?;
            Ok(true)
        })
        .await
    }

    async fn list_webhooks(&self, owner_id: OwnerId) -> Result<Vec<Webhook>, RepoError> {
        self.run(Work::Read, || async {
            self.db
                .query_all_raw(stmt(
                    &format!("SELECT {COLUMNS} FROM webhooks WHERE owner_id = $1 ORDER BY created_at DESC, id DESC"),
                    vec![(*owner_id.as_uuid()).into()],
                ))
                .await
                .repo("listing webhooks")?
                .iter()
                .map(webhook)
                .collect()
        })
        .await
    }

    async fn get_webhook(
        &self,
        owner_id: OwnerId,
        id: WebhookId,
    ) -> Result<Option<Webhook>, RepoError> {
        self.run(Work::Read, || async {
            self.db
                .query_one_raw(stmt(
                    &format!("SELECT {COLUMNS} FROM webhooks WHERE owner_id = $1 AND id = $2"),
                    vec![(*owner_id.as_uuid()).into(), (*id.as_uuid()).into()],
                ))
                .await
                .repo("reading a webhook")?
                .as_ref()
                .map(webhook)
                .transpose()
        })
        .await
    }

    async fn update_webhook(
        &self,
        owner_id: OwnerId,
        id: WebhookId,
        patch: &WebhookPatch,
        secret: Option<String>,
        ctx: &AuditContext,
    ) -> Result<Option<Webhook>, RepoError> {
        self.run(Work::Write, || async {
            let txn = self.db.start().await.repo("beginning a webhook change")?;
            let Some(old) = txn
                .query_one_raw(stmt(
                    &format!(
                        "SELECT {COLUMNS} FROM webhooks WHERE owner_id = $1 AND id = $2 FOR UPDATE"
                    ),
                    vec![(*owner_id.as_uuid()).into(), (*id.as_uuid()).into()],
                ))
                .await
                .repo("reading a webhook")?
                .as_ref()
                .map(webhook)
                .transpose()?
            else {
                return Ok(None);
            };
            let new = Webhook {
                url: patch.url.clone().unwrap_or_else(|| old.url.clone()),
                events: patch.events.clone().unwrap_or_else(|| old.events.clone()),
                description: patch
                    .description
                    .clone()
                    .unwrap_or_else(|| old.description.clone()),
                enabled: patch.enabled.unwrap_or(old.enabled),
                updated_at: Utc::now(),
                ..old.clone()
            };
            txn.execute_raw(stmt(
                "UPDATE webhooks SET url = $3, events = $4, description = $5, enabled = $6, \
                 updated_at = $7, secret = COALESCE($8, secret) WHERE owner_id = $1 AND id = $2",
                vec![
                    (*owner_id.as_uuid()).into(),
                    (*id.as_uuid()).into(),
                    new.url.clone().into(),
                    events_value(&new.events),
                    new.description.clone().into(),
                    new.enabled.into(),
                    new.updated_at.into(),
                    secret.clone().into(),
                ],
            ))
            .await
            .repo("changing a webhook")?;
            let action = if secret.is_some() {
                "webhook.rotate_secret"
            } else {
                "webhook.update"
            };
            audit(&txn, ctx, owner_id, action, id, Some(&old), Some(&new)).await?;
            txn.commit().await.repo("committing a webhook change")?;
            Ok(Some(new))
        })
        .await
    }

    async fn delete_webhook(
        &self,
        owner_id: OwnerId,
        id: WebhookId,
        ctx: &AuditContext,
    ) -> Result<bool, RepoError> {
        self.run(Work::Write, || async {
            let txn = self.db.start().await.repo("beginning a webhook deletion")?;
            let Some(old) = txn
                .query_one_raw(stmt(
                    &format!(
                        "DELETE FROM webhooks WHERE owner_id = $1 AND id = $2 RETURNING {COLUMNS}"
                    ),
                    vec![(*owner_id.as_uuid()).into(), (*id.as_uuid()).into()],
                ))
                .await
                .repo("deleting a webhook")?
                .as_ref()
                .map(webhook)
                .transpose()?
            else {
                return Ok(false);
            };
            audit(&txn, ctx, owner_id, "webhook.delete", id, Some(&old), None).await?;
            txn.commit().await.repo("committing a webhook deletion")?;
            Ok(true)
        })
        .await
    }

    async fn deliveries(
        &self,
        owner_id: OwnerId,
        id: WebhookId,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<Delivery>, RepoError> {
        self.run(Work::Read, || async {
            self.db
                .query_all_raw(stmt(
                    &format!(
                        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                         WHERE w.owner_id = $1 AND d.webhook_id = $2 AND d.event_seq < $3 \
                         ORDER BY d.event_seq DESC LIMIT $4"
                    ),
                    vec![
                        (*owner_id.as_uuid()).into(),
                        (*id.as_uuid()).into(),
                        before.unwrap_or(i64::MAX).into(),
                        i64::from(limit).into(),
                    ],
                ))
                .await
                .repo("listing deliveries")?
                .iter()
                .map(delivery)
                .collect()
        })
        .await
    }

    async fn retry_delivery(
        &self,
        owner_id: OwnerId,
        id: WebhookId,
        delivery_id: DeliveryId,
        ctx: &AuditContext,
    ) -> Result<Option<Delivery>, RepoError> {
        self.run(Work::Write, || async {
            let txn = self.db.start().await.repo("beginning a retry")?;
            let row = txn
                .query_one_raw(stmt(
                    &format!(
                        "UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now(), \
                         attempts = CASE WHEN d.status = 'failed' THEN 0 ELSE d.attempts END, \
                         created_at = CASE WHEN d.status = 'failed' THEN now() ELSE d.created_at END, \
                         finished_at = NULL \
                         FROM webhooks w WHERE w.id = d.webhook_id AND w.owner_id = $1 \
                         AND d.webhook_id = $2 AND d.id = $3 AND d.status <> 'delivered' \
                         RETURNING {DELIVERY_COLUMNS}"
                    ),
                    vec![
                        (*owner_id.as_uuid()).into(),
                        (*id.as_uuid()).into(),
                        (*delivery_id.as_uuid()).into(),
                    ],
                ))
                .await
                .repo("retrying a delivery")?;
            let Some(row) = row else {
                return Ok(None);
            };
            let d = delivery(&row)?;
            crate::audit::record(
                &txn,
                ctx,
                NewAuditEntry {
                    owner_id: Some(owner_id),
                    action: "webhook.delivery.retry",
                    resource_type: "webhook_delivery",
                    resource_id: delivery_id.to_string(),
                    old_value: None,
                    new_value: Some(serde_json::json!(&d)),
                },
                Utc::now(),
            )
            .await
            .repo("auditing a retry")?;
            txn.commit().await.repo("committing a retry")?;
            Ok(Some(d))
        })
        .await
    }
}

/// Claims due deliveries: pending, due, not claimed by a live worker, and the oldest pending
/// one of their endpoint and wallet.
const CLAIM: &str = "WITH due AS (SELECT d.id FROM webhook_deliveries d \
WHERE d.status = 'pending' AND d.next_attempt_at <= now() \
AND (d.claimed_until IS NULL OR d.claimed_until < now()) \
AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o WHERE o.status = 'pending' \
AND o.webhook_id = d.webhook_id AND o.wallet_id IS NOT DISTINCT FROM d.wallet_id \
AND o.event_seq < d.event_seq) \
ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED) \
UPDATE webhook_deliveries d SET claimed_until = now() + make_interval(secs => $2), \
attempts = d.attempts + 1 FROM due WHERE d.id = due.id RETURNING d.id";

/// Claimed deliveries with their endpoints.
const CLAIMED: &str = "SELECT d.id, d.webhook_id, d.event_seq, d.event_type, d.wallet_id, \
d.transaction_id, d.status, d.attempts, d.last_status_code, d.last_error, d.next_attempt_at, \
d.created_at, d.finished_at, w.url AS webhook_url, w.secret AS webhook_secret, \
w.owner_id AS webhook_owner \
FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
WHERE d.id = ANY($1) ORDER BY d.event_seq";

/// A claimed delivery, with its event (`None` when retention deleted it).
fn due(
    row: &QueryResult,
    events: &std::collections::HashMap<i64, waiaas_domain::Event>,
) -> Result<DueDelivery, RepoError> {
    let get = |what| move |e| RepoError(anyhow::Error::new(e).context(what));
    let delivery = delivery(row)?;
    Ok(DueDelivery {
        url: row.try_get("", "webhook_url").map_err(get("url"))?,
        secret: row.try_get("", "webhook_secret").map_err(get("secret"))?,
        owner_id: OwnerId::from_uuid(row.try_get("", "webhook_owner").map_err(get("owner"))?),
        event: events.get(&delivery.event_id).cloned(),
        delivery,
    })
}

#[async_trait]
impl DeliveryQueue for Postgres {
    async fn claim(
        &self,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<DueDelivery>, RepoError> {
        let ids: Vec<Uuid> = self
            .run(Work::Read, || async {
                self.db
                    .query_all_raw(stmt(
                        CLAIM,
                        vec![i64::from(limit).into(), lease.as_secs_f64().into()],
                    ))
                    .await
                    .repo("claiming deliveries")?
                    .iter()
                    .map(|r| r.try_get::<Uuid>("", "id").repo("decoding a delivery id"))
                    .collect()
            })
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = Value::Array(
            sea_orm::sea_query::ArrayType::Uuid,
            Some(Box::new(ids.into_iter().map(Into::into).collect())),
        );
        self.run(Work::Read, || async {
            let rows = self
                .db
                .query_all_raw(stmt(CLAIMED, vec![ids.clone()]))
                .await
                .repo("reading claimed deliveries")?;
            let places: Vec<Value> = rows
                .iter()
                .map(|r| r.try_get::<i64>("", "event_seq").map(Into::into))
                .collect::<Result<_, _>>()
                .repo("decoding an event id")?;
            let events = self
                .db
                .query_all_raw(stmt(
                    super::events::BY_PLACE,
                    vec![Value::Array(
                        sea_orm::sea_query::ArrayType::BigInt,
                        Some(Box::new(places)),
                    )],
                ))
                .await
                .repo("reading the claimed deliveries' events")?
                .iter()
                .map(|r| super::events::decode(r).map(|e| (e.id, e)))
                .collect::<Result<std::collections::HashMap<_, _>, _>>()?;
            rows.iter().map(|r| due(r, &events)).collect()
        })
        .await
    }

    async fn finish(
        &self,
        d: &DueDelivery,
        attempt: &Attempt,
    ) -> Result<Option<(OwnerId, i64)>, RepoError> {
        let status = if attempt.delivered {
            "delivered"
        } else if attempt.next_attempt_at.is_some() {
            "pending"
        } else {
            "failed"
        };
        self.run(Work::Read, || async {
            let txn = self.db.start().await.repo("beginning a delivery update")?;
            let updated = txn
                .execute_raw(stmt(
                    "UPDATE webhook_deliveries SET status = $2, last_status_code = $3, last_error = $4, \
                     next_attempt_at = COALESCE($5, next_attempt_at), claimed_until = NULL, \
                     finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END \
                     WHERE id = $1 AND status = 'pending'",
                    vec![
                        (*d.delivery.id.as_uuid()).into(),
                        status.into(),
                        attempt.status_code.map(i32::from).into(),
                        attempt.error.clone().into(),
                        attempt.next_attempt_at.into(),
                    ],
                ))
                .await
                .repo("recording a delivery attempt")?
                .rows_affected();
            let notified = if status == "failed" && updated == 1 {
                let row = txn
                    .query_one_raw(stmt(
                        crate::posting::sql::INSERT_NOTIFICATION,
                        vec![
                            Uuid::now_v7().into(),
                            (*d.owner_id.as_uuid()).into(),
                            NotificationKind::WebhookFailed.as_str().into(),
                            d.delivery.wallet_id.map(|w| *w.as_uuid()).into(),
                            d.delivery.transaction_id.map(|t| *t.as_uuid()).into(),
                            format!(
                                "Event {} ({}) could not be delivered to {} for 24 hours; retry it from the webhook's deliveries",
                                d.delivery.event_id, d.delivery.event_type, d.url
                            )
                            .into(),
                            Utc::now().into(),
                        ],
                    ))
                    .await
                    .repo("notifying the owner")?;
                row.map(|r| r.try_get::<i64>("", "version"))
                    .transpose()
                    .repo("decoding the notifications version")?
                    .map(|v| (d.owner_id, v))
            } else {
                None
            };
            txn.commit().await.repo("committing a delivery attempt")?;
            Ok(notified)
        })
        .await
    }
}
