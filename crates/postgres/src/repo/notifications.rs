//! Owners' notifications. The unread count is versioned by `owners.notifications_version`,
//! which every change of the owner's notifications bumps under the owner's row lock.

use crate::pool::Begin as _;
use async_trait::async_trait;
use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use waiaas_domain::notifications::{Notification, NotificationPage, UnreadCount};
use waiaas_domain::ports::NotificationRepository;
use waiaas_domain::{AuditContext, NewAuditEntry, NotificationId, OwnerId, PageRequest, RepoError};

use crate::audit;
use crate::entity::notifications;
use crate::error::RepoContext as _;
use crate::{Postgres, Work};

/// The count and its version in one statement, so both come from the same snapshot.
const UNREAD: &str = "SELECT o.notifications_version AS version, \
(SELECT count(*) FROM notifications n WHERE n.owner_id = o.id AND n.read_at IS NULL) AS unread \
FROM owners o WHERE o.id = $1";

const MARK_READ: &str = "UPDATE notifications SET read_at = $3 \
WHERE id = $2 AND owner_id = $1 AND read_at IS NULL RETURNING *";

const BUMP: &str =
    "UPDATE owners SET notifications_version = notifications_version + 1 WHERE id = $1";

async fn unread_count<C: ConnectionTrait>(
    conn: &C,
    owner_id: OwnerId,
) -> Result<UnreadCount, RepoError> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            UNREAD,
            [(*owner_id.as_uuid()).into()],
        ))
        .await
        .repo("counting unread notifications")?;
    let Some(row) = row else {
        return Ok(UnreadCount {
            count: 0,
            version: 0,
        });
    };
    let count: i64 = row
        .try_get("", "unread")
        .repo("decoding the unread count")?;
    let version: i64 = row
        .try_get("", "version")
        .repo("decoding the unread version")?;
    Ok(UnreadCount {
        count: u64::try_from(count).unwrap_or(0),
        version,
    })
}

#[async_trait]
impl NotificationRepository for Postgres {
    async fn list(
        &self,
        owner_id: OwnerId,
        page: &PageRequest<NotificationId>,
    ) -> Result<NotificationPage, RepoError> {
        self.run(Work::Read, move || self.notification_list(owner_id, page))
            .await
    }

    async fn unread(&self, owner_id: OwnerId) -> Result<UnreadCount, RepoError> {
        self.run(Work::Read, move || self.notification_unread(owner_id))
            .await
    }

    #[tracing::instrument(skip_all, fields(notification_id = %id))]
    async fn mark_read(
        &self,
        owner_id: OwnerId,
        id: NotificationId,
        ctx: &AuditContext,
    ) -> Result<Option<(Notification, UnreadCount)>, RepoError> {
        self.run(Work::Write, move || {
            self.notification_mark_read(owner_id, id, ctx)
        })
        .await
    }
}

impl Postgres {
    async fn notification_list(
        &self,
        owner_id: OwnerId,
        page: &PageRequest<NotificationId>,
    ) -> Result<NotificationPage, RepoError> {
        let mut q = notifications::Entity::find()
            .filter(notifications::Column::OwnerId.eq(*owner_id.as_uuid()));
        if let Some(after) = page.after {
            q = q.filter(notifications::Column::Id.lt(*after.as_uuid()));
        }
        let mut items = q
            .order_by_desc(notifications::Column::Id)
            .limit(u64::from(page.limit) + 1)
            .all(&self.db)
            .await
            .repo("listing notifications")?
            .into_iter()
            .map(|m| Notification::try_from(m).map_err(RepoError))
            .collect::<Result<Vec<_>, _>>()?;
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|n| n.id)
        } else {
            None
        };
        Ok(NotificationPage { items, next_cursor })
    }

    async fn notification_unread(&self, owner_id: OwnerId) -> Result<UnreadCount, RepoError> {
        unread_count(&self.db, owner_id).await
    }

    async fn notification_mark_read(
        &self,
        owner_id: OwnerId,
        id: NotificationId,
        ctx: &AuditContext,
    ) -> Result<Option<(Notification, UnreadCount)>, RepoError> {
        let now = Utc::now();
        let owner = *owner_id.as_uuid();
        let txn = self
            .db
            .start()
            .await
            .repo("beginning a notification update")?;
        let updated = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                MARK_READ,
                [owner.into(), (*id.as_uuid()).into(), now.into()],
            ))
            .await
            .repo("marking a notification read")?;
        let model = match updated {
            Some(row) => {
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    BUMP,
                    [owner.into()],
                ))
                .await
                .repo("bumping the notifications version")?;
                audit::record(
                    &txn,
                    ctx,
                    NewAuditEntry {
                        owner_id: Some(owner_id),
                        action: "notification.read",
                        resource_type: "notification",
                        resource_id: id.to_string(),
                        old_value: None,
                        new_value: Some(serde_json::json!({ "read_at": now })),
                    },
                    now,
                )
                .await
                .repo("auditing the notification")?;
                notifications::Model::from_query_result(&row, "").repo("decoding a notification")?
            }
            // Already read, or not this owner's: nothing changes.
            None => match notifications::Entity::find_by_id(*id.as_uuid())
                .filter(notifications::Column::OwnerId.eq(owner))
                .one(&txn)
                .await
                .repo("reading a notification")?
            {
                Some(m) => m,
                None => return Ok(None),
            },
        };
        let count = unread_count(&txn, owner_id).await?;
        crate::error::commit(txn, "committing the notification update")
            .await
            .map_err(RepoError)?;
        Ok(Some((
            Notification::try_from(model).map_err(RepoError)?,
            count,
        )))
    }
}
