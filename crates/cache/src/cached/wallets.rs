//! Wallets (ownership and assets in L1+L2, balances and summaries in L2) and policies.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use waiaas_domain::model::{HomeData, SpendSummary, WalletOwnership};
use waiaas_domain::policy::{BudgetOwner, Budgets, Policy, PolicyRules};
use waiaas_domain::ports::{PolicyRepository, WalletRepository};
use waiaas_domain::values::Asset;
use waiaas_domain::{
    AgentId, AssetCode, AuditContext, CreateWalletError, OwnerId, RepoError, Wallet, WalletBalance,
    WalletId,
};

use super::{detached, unfenced};
use crate::versioned::DatedSummary;
use crate::{Cache, Change, Kind};

/// Wallet reads through the cache.
#[derive(Clone)]
pub struct CachedWallets {
    inner: Arc<dyn WalletRepository>,
    cache: Arc<Cache>,
}

impl std::fmt::Debug for CachedWallets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachedWallets")
    }
}

impl CachedWallets {
    /// Decorates `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn WalletRepository>, cache: Arc<Cache>) -> Self {
        Self { inner, cache }
    }
}

#[async_trait]
impl WalletRepository for CachedWallets {
    async fn create(&self, wallet: &Wallet, audit: &AuditContext) -> Result<(), CreateWalletError> {
        self.inner.create(wallet, audit).await
    }

    async fn get(&self, id: WalletId) -> Result<Option<Wallet>, RepoError> {
        self.inner.get(id).await
    }

    async fn ownership(&self, id: WalletId) -> Result<Option<WalletOwnership>, RepoError> {
        self.cache
            .read_immutable(Kind::Ownership, &id.to_string(), || {
                self.inner.ownership(id)
            })
            .await
    }

    async fn balance(&self, id: WalletId) -> Result<Option<WalletBalance>, RepoError> {
        self.cache
            .read(Kind::Balance, &id.to_string(), || self.inner.balance(id))
            .await
    }

    async fn summary(
        &self,
        id: WalletId,
        today: NaiveDate,
    ) -> Result<Option<SpendSummary>, RepoError> {
        let load = || async move {
            Ok(self
                .inner
                .summary(id, today)
                .await?
                .map(|summary| DatedSummary {
                    day: today,
                    summary,
                }))
        };
        // Yesterday's entry is a miss: today's summary, read from PostgreSQL, is filled over
        // it (its version is higher: same wallet version, later day).
        Ok(self
            .cache
            .read_accepting::<DatedSummary, _, _, _>(
                Kind::Summary,
                &id.to_string(),
                |dated| dated.day == today,
                load,
            )
            .await?
            .map(|dated| dated.summary))
    }

    async fn list(
        &self,
        owner_id: OwnerId,
        agent_id: Option<AgentId>,
    ) -> Result<Vec<Wallet>, RepoError> {
        self.inner.list(owner_id, agent_id).await
    }

    async fn asset(&self, code: &AssetCode) -> Result<Option<Asset>, RepoError> {
        self.cache
            .read_immutable(Kind::Asset, code.as_str(), || self.inner.asset(code))
            .await
    }

    async fn home_fingerprint(
        &self,
        owner_id: OwnerId,
        today: NaiveDate,
    ) -> Result<String, RepoError> {
        self.inner.home_fingerprint(owner_id, today).await
    }

    /// Validated rather than written through: every read first asks PostgreSQL for the
    /// home's fingerprint (one statement over the owner's rows) and serves the cached copy
    /// only if it carries that fingerprint and today's date. A change needs no cache step
    /// to stop an older copy from being served, so none can be lost; the copy saves the
    /// agents, wallets, policies, budgets and pending approvals a rebuild reads (the service
    /// takes balances and spend from their own cached reads).
    async fn home(&self, owner_id: OwnerId, today: NaiveDate) -> Result<HomeData, RepoError> {
        let current = self.inner.home_fingerprint(owner_id, today).await?;
        let fits = |home: &HomeData| home.day == today && home.fingerprint == current;
        let load = || async move { self.inner.home(owner_id, today).await.map(Some) };
        let cached = self
            .cache
            .read_accepting::<HomeData, _, _, _>(Kind::Home, &owner_id.to_string(), fits, load)
            .await?;
        match cached {
            Some(home) if fits(&home) => Ok(home),
            // What the cache handed back was read by another caller (a shared load, or a
            // fill that lost to another entry) and may be older than `current`: read again,
            // after `current`, so the answer is at least as new as this read's start.
            _ => self.inner.home(owner_id, today).await,
        }
    }
}

/// Policy reads through the cache; a change is written through.
#[derive(Clone)]
pub struct CachedPolicies {
    inner: Arc<dyn PolicyRepository>,
    cache: Arc<Cache>,
}

impl std::fmt::Debug for CachedPolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachedPolicies")
    }
}

impl CachedPolicies {
    /// Decorates `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn PolicyRepository>, cache: Arc<Cache>) -> Self {
        Self { inner, cache }
    }
}

#[async_trait]
impl PolicyRepository for CachedPolicies {
    async fn get(&self, wallet_id: WalletId) -> Result<Policy, RepoError> {
        let load = || async move { self.inner.get(wallet_id).await.map(Some) };
        Ok(self
            .cache
            .read(Kind::Policy, &wallet_id.to_string(), load)
            .await?
            .unwrap_or_else(|| Policy::unrestricted(wallet_id)))
    }

    async fn budget(&self, of: BudgetOwner) -> Result<Budgets, RepoError> {
        // Budgets are never cached: every decision reads them under their lock, and the
        // endpoints that show them read PostgreSQL too.
        self.inner.budget(of).await
    }

    async fn create_mandate(
        &self,
        mandate: &waiaas_domain::Mandate,
        audit: &AuditContext,
    ) -> Result<(), RepoError> {
        self.inner.create_mandate(mandate, audit).await
    }

    // Mandates are never cached: every use reads one under its lock.
    async fn mandate(
        &self,
        id: waiaas_domain::MandateId,
    ) -> Result<Option<waiaas_domain::Mandate>, RepoError> {
        self.inner.mandate(id).await
    }

    async fn mandates(
        &self,
        wallet_id: WalletId,
        limit: u32,
    ) -> Result<Vec<waiaas_domain::Mandate>, RepoError> {
        self.inner.mandates(wallet_id, limit).await
    }

    async fn revoke_mandate(
        &self,
        id: waiaas_domain::MandateId,
        owner_id: OwnerId,
        audit: &AuditContext,
    ) -> Result<Option<waiaas_domain::Mandate>, RepoError> {
        let (inner, audit) = (self.inner.clone(), audit.clone());
        detached(async move { inner.revoke_mandate(id, owner_id, &audit).await }).await
    }

    async fn level_spend(
        &self,
        of: BudgetOwner,
        asset: &AssetCode,
        today: NaiveDate,
    ) -> Result<waiaas_domain::policy::LevelUsage, RepoError> {
        self.inner.level_spend(of, asset, today).await
    }

    async fn put_budget(
        &self,
        of: BudgetOwner,
        owner_id: OwnerId,
        budgets: &Budgets,
        audit: &AuditContext,
    ) -> Result<Budgets, RepoError> {
        let (inner, budgets, audit) = (self.inner.clone(), budgets.clone(), audit.clone());
        detached(async move { inner.put_budget(of, owner_id, &budgets, &audit).await }).await
    }

    async fn put(
        &self,
        wallet_id: WalletId,
        rules: &PolicyRules,
        audit: &AuditContext,
    ) -> Result<Policy, RepoError> {
        let (inner, cache) = (self.inner.clone(), self.cache.clone());
        let (rules, audit) = (rules.clone(), audit.clone());
        detached(async move {
            let policy = inner.put(wallet_id, &rules, &audit).await?;
            cache
                .apply(vec![Change::value(Kind::Policy, wallet_id, &policy)])
                .await
                .map_err(unfenced::<RepoError>)?;
            Ok(policy)
        })
        .await
    }
}
