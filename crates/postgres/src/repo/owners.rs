//! Owners and their first API key.

use crate::pool::Begin as _;
use anyhow::Context as _;
use async_trait::async_trait;
use sea_orm::{ActiveValue::Set, EntityTrait};
use waiaas_domain::ports::OwnerRepository;
use waiaas_domain::{AuditContext, NewApiKey, NewAuditEntry, Owner, OwnerId, RepoError};

use crate::audit;
use crate::convert::principal_columns;
use crate::entity::{api_keys, owners};
use crate::error::RepoContext as _;
use crate::{Postgres, Work};

pub(crate) fn key_model(
    key: &NewApiKey,
    now: chrono::DateTime<chrono::Utc>,
) -> api_keys::ActiveModel {
    let (kind, owner, agent) = principal_columns(&key.principal);
    api_keys::ActiveModel {
        id: Set(*key.id.as_uuid()),
        key_hash: Set(key.hash.as_str().to_owned()),
        principal_type: Set(kind.to_owned()),
        owner_id: Set(owner),
        agent_id: Set(agent),
        created_at: Set(now),
        revoked_at: Set(None),
        expires_at: Set(key.expires_at),
    }
}

#[async_trait]
impl OwnerRepository for Postgres {
    #[tracing::instrument(skip_all, fields(owner_id = %owner.id))]
    async fn create(
        &self,
        owner: &Owner,
        key: &NewApiKey,
        ctx: &AuditContext,
    ) -> Result<(), RepoError> {
        self.run(Work::Write, move || self.owner_create(owner, key, ctx))
            .await
    }

    async fn get(&self, id: OwnerId) -> Result<Option<Owner>, RepoError> {
        self.run(Work::Read, move || self.owner_get(id)).await
    }
}

impl Postgres {
    async fn owner_create(
        &self,
        owner: &Owner,
        key: &NewApiKey,
        ctx: &AuditContext,
    ) -> Result<(), RepoError> {
        let txn = self.db.start().await.repo("beginning owner creation")?;
        owners::Entity::insert(owners::ActiveModel {
            id: Set(*owner.id.as_uuid()),
            name: Set(owner.name.as_str().to_owned()),
            notifications_version: Set(0),
            created_at: Set(owner.created_at),
        })
        .exec_without_returning(&txn)
        .await
        .repo("inserting the owner")?;
        api_keys::Entity::insert(key_model(key, owner.created_at))
            .exec_without_returning(&txn)
            .await
            .repo("inserting the owner's key")?;
        audit::record(
            &txn,
            ctx,
            NewAuditEntry {
                owner_id: Some(owner.id),
                action: "owner.create",
                resource_type: "owner",
                resource_id: owner.id.to_string(),
                old_value: None,
                new_value: Some(serde_json::json!({ "name": owner.name, "api_key_id": key.id })),
            },
            owner.created_at,
        )
        .await
        .repo("auditing owner creation")?;
        crate::error::commit(txn, "committing owner creation")
            .await
            .map_err(RepoError)
    }

    async fn owner_get(&self, id: OwnerId) -> Result<Option<Owner>, RepoError> {
        owners::Entity::find_by_id(*id.as_uuid())
            .one(&self.db)
            .await
            .repo("reading an owner")?
            .map(Owner::try_from)
            .transpose()
            .context("decoding an owner")
            .map_err(RepoError)
    }
}
