//! Writing audit rows inside the caller's database transaction, and reading the trail.

use async_trait::async_trait;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use waiaas_domain::ports::AuditLog;
use waiaas_domain::{AuditContext, AuditEntry, AuditQuery, NewAuditEntry, RepoError};

use crate::entity::audit_logs;
use crate::error::RepoContext as _;
use crate::posting::sql;
use crate::{Postgres, Work};

/// The values of a new audit row, in column order up to its client address (the time is the
/// caller's to add): a new id, owner, actor type and id, action, resource type and id, old and
/// new value, request id, client address as text.
pub(crate) fn row_values(ctx: &AuditContext, entry: NewAuditEntry) -> Vec<sea_orm::Value> {
    vec![
        uuid::Uuid::now_v7().into(),
        entry.owner_id.map(|o| *o.as_uuid()).into(),
        ctx.actor.kind().into(),
        ctx.actor.id().into(),
        entry.action.into(),
        entry.resource_type.into(),
        entry.resource_id.into(),
        entry.old_value.into(),
        entry.new_value.into(),
        ctx.request_id.clone().into(),
        ctx.ip.map(|ip| ip.to_string()).into(),
    ]
}

/// Appends an audit row with the given connection (a database transaction).
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    ctx: &AuditContext,
    entry: NewAuditEntry,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql::INSERT_AUDIT,
        row_values(ctx, entry).into_iter().chain([at.into()]),
    ))
    .await?;
    Ok(())
}

#[async_trait]
impl AuditLog for Postgres {
    #[tracing::instrument(skip_all, fields(owner_id = %query.owner_id))]
    async fn list(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, RepoError> {
        self.read_replica_safe(|db| self.audit_list(db, query))
            .await
    }

    async fn ledger_head(&self) -> Result<waiaas_domain::LedgerHead, RepoError> {
        self.run(Work::Read, || async {
            let head = crate::chain::head(&self.db).await.map_err(RepoError)?;
            Ok(waiaas_domain::LedgerHead {
                position: head.position,
                hash: head.hash_hex(),
                sealed_at: head.sealed_at,
            })
        })
        .await
    }
}

impl Postgres {
    async fn audit_list(
        &self,
        db: &sea_orm::DatabaseConnection,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, RepoError> {
        let mut select = audit_logs::Entity::find()
            .filter(audit_logs::Column::OwnerId.eq(*query.owner_id.as_uuid()));
        if let Some(t) = &query.resource_type {
            select = select.filter(audit_logs::Column::ResourceType.eq(t.as_str()));
        }
        if let Some(id) = &query.resource_id {
            select = select.filter(audit_logs::Column::ResourceId.eq(id.as_str()));
        }
        if let Some(before) = query.before {
            select = select.filter(audit_logs::Column::Id.lt(*before.as_uuid()));
        }
        let rows = select
            .order_by_desc(audit_logs::Column::Id)
            .limit(u64::from(query.limit))
            .all(db)
            .await
            .repo("reading the audit trail")?;
        rows.into_iter()
            .map(|m| AuditEntry::try_from(m).map_err(RepoError))
            .collect()
    }
}
