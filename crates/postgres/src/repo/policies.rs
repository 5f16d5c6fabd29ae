//! Wallet policies: read, and replace with a version bump and an audit of old and new rules.

use crate::pool::Begin as _;
use async_trait::async_trait;
use chrono::NaiveDate;
use chrono::Utc;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, Statement};
use waiaas_domain::policy::{BudgetOwner, Budgets, LevelUsage, Policy, PolicyRules};
use waiaas_domain::ports::PolicyRepository;
use waiaas_domain::{
    AssetCode, AuditContext, Mandate, MandateId, NewAuditEntry, OwnerId, RepoError, WalletId,
};

use crate::audit;
use crate::convert;
use crate::entity::wallet_policies;
use crate::error::{RepoContext as _, commit};
use crate::{Postgres, Work};

/// Inserts or replaces the rules, bumping the version, and returns the new row together
/// with the old rules (the CTE reads them before the upsert in the same snapshot).
const UPSERT: &str = "WITH old AS (SELECT rules FROM wallet_policies WHERE wallet_id = $1) \
INSERT INTO wallet_policies AS p (wallet_id, rules, version, created_at, updated_at) \
VALUES ($1, $2, 1, $3, $3) \
ON CONFLICT (wallet_id) DO UPDATE SET rules = EXCLUDED.rules, version = p.version + 1, updated_at = EXCLUDED.updated_at \
RETURNING p.wallet_id, p.rules, p.version, p.created_at, p.updated_at, (SELECT rules FROM old) AS old_rules";

/// Serialises policy changes with postings on the same wallet: a transfer decides under the
/// policy that was committed before it took the wallet's lock. Returns the owner.
const LOCK_WALLET: &str = "SELECT owner_id FROM wallets WHERE id = $1 FOR NO KEY UPDATE";

#[async_trait]
impl PolicyRepository for Postgres {
    async fn get(&self, wallet_id: WalletId) -> Result<Policy, RepoError> {
        self.run(Work::Read, move || async move {
            let m = wallet_policies::Entity::find_by_id(*wallet_id.as_uuid())
                .one(&self.db)
                .await
                .repo("reading a policy")?;
            convert::policy(wallet_id, m).map_err(RepoError)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(wallet_id = %wallet_id))]
    async fn put(
        &self,
        wallet_id: WalletId,
        rules: &PolicyRules,
        ctx: &AuditContext,
    ) -> Result<Policy, RepoError> {
        self.run(Work::Write, move || self.put_once(wallet_id, rules, ctx))
            .await
    }

    async fn budget(&self, of: BudgetOwner) -> Result<Budgets, RepoError> {
        self.run(Work::Read, move || super::budgets::read(&self.db, of))
            .await
    }

    async fn create_mandate(&self, mandate: &Mandate, ctx: &AuditContext) -> Result<(), RepoError> {
        self.run(Work::Write, move || {
            super::mandates::create(&self.db, mandate, ctx)
        })
        .await
    }

    async fn mandate(&self, id: MandateId) -> Result<Option<Mandate>, RepoError> {
        self.run(Work::Read, move || super::mandates::get(&self.db, id))
            .await
    }

    async fn mandates(&self, wallet_id: WalletId, limit: u32) -> Result<Vec<Mandate>, RepoError> {
        self.run(Work::Read, move || {
            super::mandates::list(&self.db, wallet_id, limit)
        })
        .await
    }

    async fn revoke_mandate(
        &self,
        id: MandateId,
        owner_id: OwnerId,
        ctx: &AuditContext,
    ) -> Result<Option<Mandate>, RepoError> {
        self.run(Work::Write, move || {
            super::mandates::revoke(&self.db, id, owner_id, ctx)
        })
        .await
    }

    async fn level_spend(
        &self,
        of: BudgetOwner,
        asset: &AssetCode,
        today: NaiveDate,
    ) -> Result<LevelUsage, RepoError> {
        self.run(Work::Read, move || {
            super::budgets::spend(&self.db, of, asset, today)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn put_budget(
        &self,
        of: BudgetOwner,
        owner_id: OwnerId,
        budgets: &Budgets,
        ctx: &AuditContext,
    ) -> Result<Budgets, RepoError> {
        self.run(Work::Write, move || {
            super::budgets::put(&self.db, of, owner_id, budgets, ctx)
        })
        .await
    }
}

impl Postgres {
    async fn put_once(
        &self,
        wallet_id: WalletId,
        rules: &PolicyRules,
        ctx: &AuditContext,
    ) -> Result<Policy, RepoError> {
        let now = Utc::now();
        let json = serde_json::to_value(rules).map_err(|e| RepoError(e.into()))?;
        let txn = self.db.start().await.repo("beginning a policy change")?;
        let owner: uuid::Uuid = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                LOCK_WALLET,
                [(*wallet_id.as_uuid()).into()],
            ))
            .await
            .repo("locking the wallet")?
            .ok_or_else(|| RepoError(anyhow::anyhow!("wallet {wallet_id} vanished")))?
            .try_get("", "owner_id")
            .repo("decoding the owner")?;
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                UPSERT,
                [
                    (*wallet_id.as_uuid()).into(),
                    json.clone().into(),
                    now.into(),
                ],
            ))
            .await
            .repo("writing the policy")?
            .ok_or_else(|| RepoError(anyhow::anyhow!("policy upsert returned no row")))?;
        let old: Option<serde_json::Value> =
            row.try_get("", "old_rules").repo("decoding old rules")?;
        let model =
            wallet_policies::Model::from_query_result(&row, "").repo("decoding the policy")?;
        let policy = convert::policy(wallet_id, Some(model)).map_err(RepoError)?;
        audit::record(
            &txn,
            ctx,
            NewAuditEntry {
                owner_id: Some(OwnerId::from_uuid(owner)),
                action: "wallet.policy.set",
                resource_type: "wallet",
                resource_id: wallet_id.to_string(),
                old_value: old,
                new_value: Some(serde_json::json!({ "rules": json, "version": policy.version })),
            },
            now,
        )
        .await
        .repo("auditing the policy change")?;
        commit(txn, "committing the policy change")
            .await
            .map_err(RepoError)?;
        Ok(policy)
    }
}
