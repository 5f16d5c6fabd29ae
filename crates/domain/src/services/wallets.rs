//! Wallets, balances, spend summaries and policies.

use super::Services;
use crate::errors::{AccessError, CreateWalletError, SetPolicyError};
use crate::ids::{AgentId, WalletId};
use crate::model::{AgentStatus, AuditContext, Principal, SpendSummary, Wallet, WalletBalance};
use crate::money::Money;
use crate::policy::{Policy, PolicyRules};
use crate::values::{AssetCode, Name};

impl Services {
    /// Opens a wallet of an asset for an agent of the owner, with a zero balance.
    ///
    /// # Errors
    /// `Invalid` for a malformed asset code or name, `UnknownAsset`, `AgentNotFound` when the
    /// agent is not the owner's, `AgentRevoked`.
    #[tracing::instrument(skip_all, fields(agent_id = %agent_id))]
    pub async fn create_wallet(
        &self,
        principal: &Principal,
        agent_id: AgentId,
        asset: &str,
        name: Option<&str>,
        audit: &AuditContext,
    ) -> Result<Wallet, CreateWalletError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(CreateWalletError::AgentNotFound(agent_id));
        };
        let asset = AssetCode::parse(asset)?;
        let name = name.map(Name::parse).transpose()?;
        let agent = self
            .ports
            .agents
            .get(agent_id)
            .await?
            .filter(|a| a.owner_id == *owner_id)
            .ok_or(CreateWalletError::AgentNotFound(agent_id))?;
        if agent.status == AgentStatus::Revoked {
            return Err(CreateWalletError::AgentNotFound(agent_id));
        }
        if self.ports.wallets.asset(&asset).await?.is_none() {
            return Err(CreateWalletError::UnknownAsset(asset));
        }
        let wallet = Wallet {
            id: WalletId::new(),
            agent_id,
            owner_id: *owner_id,
            asset,
            name,
            balance: Money::ZERO,
            held: Money::ZERO,
            version: 1,
            created_at: self.ports.clock.now(),
        };
        self.ports.wallets.create(&wallet, audit).await?;
        Ok(wallet)
    }

    /// A wallet the principal may see.
    ///
    /// # Errors
    /// `NotFound` when it does not exist or is another tenant's.
    pub async fn get_wallet(
        &self,
        principal: &Principal,
        id: WalletId,
    ) -> Result<Wallet, AccessError> {
        self.visible_wallet(principal, id).await?;
        self.ports
            .wallets
            .get(id)
            .await?
            .ok_or(AccessError::NotFound)
    }

    /// The owner's wallets, optionally one agent's; an agent sees its own.
    ///
    /// # Errors
    /// `Unknown` when storage fails.
    pub async fn list_wallets(
        &self,
        principal: &Principal,
        agent_id: Option<AgentId>,
    ) -> Result<Vec<Wallet>, AccessError> {
        let agent_id = match principal {
            Principal::Owner { .. } => agent_id,
            Principal::Agent { agent_id: own, .. } => {
                if agent_id.is_some_and(|a| a != *own) {
                    return Err(AccessError::NotFound);
                }
                Some(*own)
            }
        };
        Ok(self
            .ports
            .wallets
            .list(principal.owner_id(), agent_id)
            .await?)
    }

    /// A wallet's balance, read through the cache when one is wired in. For display only:
    /// spending is always decided on the row locked in PostgreSQL.
    ///
    /// # Errors
    /// `NotFound` when the wallet does not exist or is another tenant's.
    pub async fn balance(
        &self,
        principal: &Principal,
        id: WalletId,
    ) -> Result<WalletBalance, AccessError> {
        self.visible_wallet(principal, id).await?;
        self.ports
            .wallets
            .balance(id)
            .await?
            .ok_or(AccessError::NotFound)
    }

    /// Today's and this month's spend.
    ///
    /// # Errors
    /// `NotFound` when the wallet does not exist or is another tenant's.
    pub async fn summary(
        &self,
        principal: &Principal,
        id: WalletId,
    ) -> Result<SpendSummary, AccessError> {
        self.visible_wallet(principal, id).await?;
        let today = self.ports.clock.now().date_naive();
        self.ports
            .wallets
            .summary(id, today)
            .await?
            .ok_or(AccessError::NotFound)
    }

    /// The calling owner's home: every agent that is not deleted with its wallets, their
    /// spend against the budget at each level, and what waits for the owner's approval.
    ///
    /// # Errors
    /// `Forbidden` for an agent.
    pub async fn home(&self, principal: &Principal) -> Result<crate::model::Home, AccessError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(AccessError::Forbidden("only owners have a home"));
        };
        let now = self.ports.clock.now();
        let today = now.date_naive();
        let data = self.ports.wallets.home(*owner_id, today).await?;
        // Balances and spend through their own reads (cached when a cache is wired in), so the
        // home never shows a balance a balance read right after it would go back from.
        let wallets = &self.ports.wallets;
        let live = futures::future::try_join_all(data.wallets.iter().map(|w| async move {
            let id = w.wallet.id;
            let balance = wallets.balance(id).await?;
            Ok::<_, crate::errors::RepoError>(
                wallets
                    .summary(id, today)
                    .await?
                    .map(|s| (id, (balance, s))),
            )
        }))
        .await?
        .into_iter()
        .flatten()
        .collect();
        Ok(crate::model::Home::from_data(data, &live, now))
    }

    /// A wallet's policy; the unrestricted policy at version 0 if none was set.
    ///
    /// # Errors
    /// `NotFound` when the wallet does not exist or is another tenant's.
    pub async fn get_policy(
        &self,
        principal: &Principal,
        id: WalletId,
    ) -> Result<Policy, AccessError> {
        self.visible_wallet(principal, id).await?;
        Ok(self.ports.policies.get(id).await?)
    }

    /// Replaces a wallet's policy. Only the owner may; the agent is told it may not.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden` for the agent holding the wallet, `Invalid` rules.
    #[tracing::instrument(skip_all, fields(wallet_id = %id))]
    pub async fn set_policy(
        &self,
        principal: &Principal,
        id: WalletId,
        rules: PolicyRules,
        audit: &AuditContext,
    ) -> Result<Policy, SetPolicyError> {
        match self.visible_wallet(principal, id).await {
            Ok(_) => {}
            Err(AccessError::Unknown(e)) => return Err(SetPolicyError::Unknown(e)),
            Err(_) => return Err(SetPolicyError::NotFound),
        }
        if principal.agent_id().is_some() {
            return Err(SetPolicyError::Forbidden);
        }
        rules.validate()?;
        let policy = self.ports.policies.put(id, &rules, audit).await?;
        self.ports.feed.committed();
        tracing::info!(version = policy.version, "Policy set");
        Ok(policy)
    }
}
