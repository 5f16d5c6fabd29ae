//! Wallets: creation, reads of the row, its ownership, balance and spend summary; assets.

use crate::pool::Begin as _;
use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{Datelike as _, NaiveDate};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use waiaas_domain::model::{SpendSummary, SpendTotals, WalletOwnership};
use waiaas_domain::ports::WalletRepository;
use waiaas_domain::values::Asset;
use waiaas_domain::{
    AgentId, AgentStatus, AssetCode, AuditContext, CreateWalletError, NewAuditEntry, OwnerId,
    RepoError, Wallet, WalletBalance, WalletId,
};

use crate::audit;
use crate::convert;
use crate::entity::{agents, assets, wallets};
use crate::error::{DbContext as _, RepoContext as _};
use crate::{Postgres, Work};

/// Today's and this month's spend of a wallet with its row version: at most 31 rows of
/// `wallet_daily_spend`, whatever the size of the history. A day's spend is stored
/// saturating at `i64::MAX`, and the month's sum is capped there: either reaching the cap is
/// reported as `capped` (the true total is at least that), never as an error or silently.
const SUMMARY: &str = "SELECT w.version, \
COALESCE(SUM(s.amount) FILTER (WHERE s.day = $2), 0)::bigint AS today_spent, \
COALESCE(SUM(s.count) FILTER (WHERE s.day = $2), 0)::bigint AS today_count, \
COALESCE(bool_or(s.amount = 9223372036854775807) FILTER (WHERE s.day = $2), false) AS today_capped, \
LEAST(COALESCE(SUM(s.amount), 0), 9223372036854775807)::bigint AS month_spent, \
COALESCE(SUM(s.count), 0)::bigint AS month_count, \
COALESCE(SUM(s.amount), 0) >= 9223372036854775807 AS month_capped \
FROM wallets w LEFT JOIN wallet_daily_spend s ON s.wallet_id = w.id AND s.day >= $3 AND s.day <= $2 \
WHERE w.id = $1 GROUP BY w.version";

#[async_trait]
impl WalletRepository for Postgres {
    #[tracing::instrument(skip_all, fields(wallet_id = %wallet.id))]
    async fn create(&self, wallet: &Wallet, ctx: &AuditContext) -> Result<(), CreateWalletError> {
        self.run(Work::Write, move || self.wallet_create(wallet, ctx))
            .await
    }

    async fn get(&self, id: WalletId) -> Result<Option<Wallet>, RepoError> {
        self.run(Work::Read, move || self.wallet_get(id)).await
    }

    async fn ownership(&self, id: WalletId) -> Result<Option<WalletOwnership>, RepoError> {
        self.run(Work::Read, move || self.wallet_ownership(id))
            .await
    }

    async fn balance(&self, id: WalletId) -> Result<Option<WalletBalance>, RepoError> {
        self.run(Work::Read, move || self.wallet_balance(id)).await
    }

    async fn summary(
        &self,
        id: WalletId,
        today: NaiveDate,
    ) -> Result<Option<SpendSummary>, RepoError> {
        self.run(Work::Read, move || self.wallet_summary(id, today))
            .await
    }

    async fn list(
        &self,
        owner_id: OwnerId,
        agent_id: Option<AgentId>,
    ) -> Result<Vec<Wallet>, RepoError> {
        self.run(Work::Read, move || self.wallet_list(owner_id, agent_id))
            .await
    }

    async fn asset(&self, code: &AssetCode) -> Result<Option<Asset>, RepoError> {
        self.run(Work::Read, move || self.wallet_asset(code)).await
    }

    async fn home_fingerprint(
        &self,
        owner_id: OwnerId,
        _today: NaiveDate,
    ) -> Result<String, RepoError> {
        self.home_fingerprint_of(owner_id).await
    }

    async fn home(
        &self,
        owner_id: OwnerId,
        today: NaiveDate,
    ) -> Result<waiaas_domain::model::HomeData, RepoError> {
        self.home_of(owner_id, today).await
    }
}

impl Postgres {
    async fn wallet_create(
        &self,
        wallet: &Wallet,
        ctx: &AuditContext,
    ) -> Result<(), CreateWalletError> {
        let txn = self.db.start().await.doing("beginning wallet creation")?;
        // The agent row is share-locked so a concurrent deletion cannot slip in between.
        let agent = agents::Entity::find_by_id(*wallet.agent_id.as_uuid())
            .lock_shared()
            .one(&txn)
            .await
            .doing("reading the agent")?
            .filter(|a| a.owner_id == *wallet.owner_id.as_uuid())
            .ok_or(CreateWalletError::AgentNotFound(wallet.agent_id))?;
        if agent.status == AgentStatus::Revoked.as_str() {
            return Err(CreateWalletError::AgentRevoked(wallet.agent_id));
        }
        let inserted = wallets::Entity::insert(wallets::ActiveModel {
            id: Set(*wallet.id.as_uuid()),
            agent_id: Set(*wallet.agent_id.as_uuid()),
            owner_id: Set(*wallet.owner_id.as_uuid()),
            asset: Set(wallet.asset.as_str().to_owned()),
            name: Set(wallet.name.as_ref().map(|n| n.as_str().to_owned())),
            balance: Set(0),
            held: Set(0),
            version: Set(wallet.version),
            created_at: Set(wallet.created_at),
            updated_at: Set(wallet.created_at),
        })
        .exec_without_returning(&txn)
        .await;
        if let Err(e) = inserted {
            if crate::error::is_fk_violation(&e) {
                return Err(CreateWalletError::UnknownAsset(wallet.asset.clone()));
            }
            return Err(crate::error::unknown(e, "inserting the wallet").into());
        }
        audit::record(
            &txn,
            ctx,
            NewAuditEntry {
                owner_id: Some(wallet.owner_id),
                action: "wallet.create",
                resource_type: "wallet",
                resource_id: wallet.id.to_string(),
                old_value: None,
                new_value: Some(serde_json::to_value(wallet).unwrap_or_default()),
            },
            wallet.created_at,
        )
        .await
        .doing("auditing wallet creation")?;
        crate::error::commit(txn, "committing wallet creation").await?;
        Ok(())
    }

    async fn wallet_get(&self, id: WalletId) -> Result<Option<Wallet>, RepoError> {
        wallets::Entity::find_by_id(*id.as_uuid())
            .one(&self.db)
            .await
            .repo("reading a wallet")?
            .map(Wallet::try_from)
            .transpose()
            .map_err(RepoError)
    }

    async fn wallet_ownership(&self, id: WalletId) -> Result<Option<WalletOwnership>, RepoError> {
        let row: Option<(uuid::Uuid, uuid::Uuid, String)> =
            wallets::Entity::find_by_id(*id.as_uuid())
                .select_only()
                .columns([
                    wallets::Column::AgentId,
                    wallets::Column::OwnerId,
                    wallets::Column::Asset,
                ])
                .into_tuple()
                .one(&self.db)
                .await
                .repo("reading a wallet's ownership")?;
        row.map(|(agent, owner, asset)| {
            Ok(WalletOwnership {
                wallet_id: id,
                agent_id: AgentId::from_uuid(agent),
                owner_id: OwnerId::from_uuid(owner),
                asset: AssetCode::parse(&asset).context("stored asset")?,
            })
        })
        .transpose()
        .map_err(RepoError)
    }

    async fn wallet_balance(&self, id: WalletId) -> Result<Option<WalletBalance>, RepoError> {
        let row: Option<(String, i64, i64, i64)> = wallets::Entity::find_by_id(*id.as_uuid())
            .select_only()
            .columns([
                wallets::Column::Asset,
                wallets::Column::Balance,
                wallets::Column::Held,
                wallets::Column::Version,
            ])
            .into_tuple()
            .one(&self.db)
            .await
            .repo("reading a balance")?;
        row.map(|(asset, balance, held, version)| {
            convert::balance(*id.as_uuid(), &asset, balance, held, version)
        })
        .transpose()
        .map_err(RepoError)
    }

    async fn wallet_summary(
        &self,
        id: WalletId,
        today: NaiveDate,
    ) -> Result<Option<SpendSummary>, RepoError> {
        let month_start = today.with_day(1).unwrap_or(today);
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                SUMMARY,
                [(*id.as_uuid()).into(), today.into(), month_start.into()],
            ))
            .await
            .repo("reading a spend summary")?;
        let Some(row) = row else { return Ok(None) };
        let get = |col: &str| -> Result<i64, RepoError> {
            row.try_get("", col).repo("decoding a spend summary")
        };
        let totals = |spent: &str, count: &str, capped: &str| -> Result<SpendTotals, RepoError> {
            Ok(SpendTotals {
                spent: convert::money(get(spent)?, "spend").map_err(RepoError)?,
                count: u32::try_from(get(count)?).unwrap_or(u32::MAX),
                capped: row.try_get("", capped).repo("decoding a spend summary")?,
            })
        };
        Ok(Some(SpendSummary {
            wallet_id: id,
            today: totals("today_spent", "today_count", "today_capped")?,
            month: totals("month_spent", "month_count", "month_capped")?,
            version: get("version")?,
        }))
    }

    async fn wallet_list(
        &self,
        owner_id: OwnerId,
        agent_id: Option<AgentId>,
    ) -> Result<Vec<Wallet>, RepoError> {
        let mut q =
            wallets::Entity::find().filter(wallets::Column::OwnerId.eq(*owner_id.as_uuid()));
        if let Some(a) = agent_id {
            q = q.filter(wallets::Column::AgentId.eq(*a.as_uuid()));
        }
        q.order_by_asc(wallets::Column::CreatedAt)
            .limit(1000)
            .all(&self.db)
            .await
            .repo("listing wallets")?
            .into_iter()
            .map(|m| Wallet::try_from(m).map_err(RepoError))
            .collect()
    }

    async fn wallet_asset(&self, code: &AssetCode) -> Result<Option<Asset>, RepoError> {
        assets::Entity::find_by_id(code.as_str().to_owned())
            .one(&self.db)
            .await
            .repo("reading an asset")?
            .map(Asset::try_from)
            .transpose()
            .map_err(RepoError)
    }
}
