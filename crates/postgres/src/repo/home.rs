//! An owner's home: its fingerprint (one statement over the owner's rows) and the data it
//! covers, read after it.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, Statement};
use waiaas_domain::model::{HOME_PENDING_LIMIT, HomeData, HomeLevel, HomeWallet};
use waiaas_domain::policy::BudgetOwner;
use waiaas_domain::ports::{AgentRepository, PolicyRepository, WalletRepository};
use waiaas_domain::{AgentStatus, OwnerId, RepoError, Transaction};

use crate::entity::transactions;
use crate::error::RepoContext as _;
use crate::{Postgres, Work};

/// Everything a home shows changes one of these: agents (name, status) bump `agents.version`;
/// balances, holds and spend bump `wallets.version`; policies bump
/// `wallet_policies.version`; a budget's replacement moves its `updated_at` (or the number of
/// its rows); a transaction that starts or stops waiting for approval changes the set of ids
/// hashed last. Versions only grow and these rows are never deleted, so the sums cannot
/// come back to an earlier value. The day is not in it: the caller compares days itself.
/// The pending set is read through the partial index on `status = 'pending_approval'`.
const FINGERPRINT: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS version, \
concat_ws('/', \
 (SELECT count(*) || ':' || COALESCE(sum(version), 0) FROM agents WHERE owner_id = $1), \
 (SELECT count(*) || ':' || COALESCE(sum(w.version), 0) || ':' || COALESCE(sum(p.version), 0) \
    FROM wallets w LEFT JOIN wallet_policies p ON p.wallet_id = w.id WHERE w.owner_id = $1), \
 (SELECT count(*) || ':' || COALESCE(max(b.updated_at)::text, '') \
    FROM agent_budgets b JOIN agents a ON a.id = b.agent_id WHERE a.owner_id = $1), \
 (SELECT count(*) || ':' || COALESCE(max(updated_at)::text, '') FROM owner_budgets WHERE owner_id = $1), \
 (SELECT count(*) || ':' || COALESCE(md5(string_agg(id::text, ',' ORDER BY id)), '') \
    FROM transactions WHERE status = 'pending_approval' AND owner_id = $1) \
) AS fingerprint";

/// The transactions waiting for the owner's approval, newest first.
const PENDING: &str = "SELECT * FROM transactions WHERE status = 'pending_approval' AND owner_id = $1 \
ORDER BY created_at DESC, id DESC LIMIT $2";

#[derive(Debug, FromQueryResult)]
struct Print {
    version: i64,
    fingerprint: String,
}

impl Postgres {
    async fn home_print(&self, owner_id: OwnerId) -> Result<Print, RepoError> {
        self.run(Work::Read, move || async move {
            Print::find_by_statement(Statement::from_sql_and_values(
                DbBackend::Postgres,
                FINGERPRINT,
                [(*owner_id.as_uuid()).into()],
            ))
            .one(&self.db)
            .await
            .repo("reading a home's fingerprint")?
            .ok_or_else(|| RepoError(anyhow::anyhow!("the fingerprint query returned no row")))
        })
        .await
    }

    pub(super) async fn home_fingerprint_of(&self, owner_id: OwnerId) -> Result<String, RepoError> {
        Ok(self.home_print(owner_id).await?.fingerprint)
    }

    pub(super) async fn home_of(
        &self,
        owner_id: OwnerId,
        today: NaiveDate,
    ) -> Result<HomeData, RepoError> {
        // First: everything read below is at least as new as this.
        let print = self.home_print(owner_id).await?;
        let agents: Vec<_> = AgentRepository::list(self, owner_id)
            .await?
            .into_iter()
            .filter(|a| a.status != AgentStatus::Revoked)
            .collect();
        let live: BTreeSet<_> = agents.iter().map(|a| a.id).collect();
        let mut wallets = Vec::new();
        let mut assets = BTreeSet::new();
        for wallet in WalletRepository::list(self, owner_id, None).await? {
            if !live.contains(&wallet.agent_id) {
                continue;
            }
            let rules = PolicyRepository::get(self, wallet.id).await?.rules;
            assets.insert((Some(wallet.agent_id), wallet.asset.clone()));
            assets.insert((None, wallet.asset.clone()));
            wallets.push(HomeWallet { wallet, rules });
        }
        let mut levels = Vec::new();
        let owners = std::iter::once(None).chain(agents.iter().map(|a| Some(a.id)));
        for of in owners {
            let level = of.map_or(BudgetOwner::Owner(owner_id), BudgetOwner::Agent);
            for (asset, limits) in PolicyRepository::budget(self, level).await? {
                // A budget over an asset none of the level's wallets hold is shown unspent.
                let usage = if assets.contains(&(of, asset.clone())) {
                    PolicyRepository::level_spend(self, level, &asset, today).await?
                } else {
                    waiaas_domain::policy::LevelUsage::default()
                };
                levels.push(HomeLevel {
                    agent_id: of,
                    asset,
                    limits,
                    usage,
                });
            }
        }
        let (pending, pending_total) = self.home_pending(owner_id).await?;
        Ok(HomeData {
            owner_id,
            day: today,
            fingerprint: print.fingerprint,
            version: print.version,
            agents,
            wallets,
            levels,
            pending,
            pending_total,
        })
    }

    async fn home_pending(&self, owner_id: OwnerId) -> Result<(Vec<Transaction>, u64), RepoError> {
        self.run(Work::Read, move || async move {
            let limit = i64::try_from(HOME_PENDING_LIMIT).unwrap_or(i64::MAX);
            let rows = transactions::Entity::find()
                .from_raw_sql(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    PENDING,
                    [(*owner_id.as_uuid()).into(), limit.into()],
                ))
                .all(&self.db)
                .await
                .repo("reading the transactions waiting for approval")?;
            let listed = rows.len();
            let total = if listed < HOME_PENDING_LIMIT {
                listed as u64
            } else {
                let row = self
                    .db
                    .query_one_raw(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "SELECT count(*) AS n FROM transactions \
                         WHERE status = 'pending_approval' AND owner_id = $1",
                        [(*owner_id.as_uuid()).into()],
                    ))
                    .await
                    .repo("counting the transactions waiting for approval")?;
                row.map(|r| r.try_get::<i64>("", "n"))
                    .transpose()
                    .repo("decoding a count")?
                    .map_or(0, |n| u64::try_from(n).unwrap_or(0))
            };
            let pending = rows
                .into_iter()
                .map(|m| Transaction::try_from(m).map_err(RepoError))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((pending, total))
        })
        .await
    }
}
