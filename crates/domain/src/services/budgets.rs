//! Budgets above the wallet: an agent's over its wallets and an owner's over all of its
//! wallets, per asset. Every spend is decided under them (see the policy engine).

use super::Services;
use crate::errors::AccessError;
use crate::ids::AgentId;
use crate::model::{AuditContext, Principal};
use crate::policy::{BudgetOwner, Budgets};

/// The most assets one budget may name.
pub const MAX_BUDGET_ASSETS: usize = 100;

impl Services {
    /// An agent's budget: its owner or the agent itself may read it.
    ///
    /// # Errors
    /// `NotFound` when the agent is not visible to the principal.
    pub async fn agent_budget(
        &self,
        principal: &Principal,
        agent_id: AgentId,
    ) -> Result<Budgets, AccessError> {
        self.get_agent(principal, agent_id).await?;
        Ok(self
            .ports
            .policies
            .budget(BudgetOwner::Agent(agent_id))
            .await?)
    }

    /// Replaces an agent's budget (the owner only); assets left out lose theirs.
    ///
    /// # Errors
    /// `Forbidden` for an agent, `NotFound` for another owner's agent, `Invalid` for an
    /// asset the platform does not support or too many assets.
    pub async fn set_agent_budget(
        &self,
        principal: &Principal,
        agent_id: AgentId,
        budgets: Budgets,
        audit: &AuditContext,
    ) -> Result<Budgets, AccessError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(AccessError::Forbidden(
                "only the owner sets an agent's budget",
            ));
        };
        self.get_agent(principal, agent_id).await?;
        self.check_budget_assets(&budgets).await?;
        let set = self
            .ports
            .policies
            .put_budget(BudgetOwner::Agent(agent_id), *owner_id, &budgets, audit)
            .await?;
        self.ports.feed.committed();
        Ok(set)
    }

    /// The calling owner's budget over all its wallets.
    ///
    /// # Errors
    /// `Forbidden` for an agent.
    pub async fn owner_budget(&self, principal: &Principal) -> Result<Budgets, AccessError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(AccessError::Forbidden("only an owner reads its budget"));
        };
        Ok(self
            .ports
            .policies
            .budget(BudgetOwner::Owner(*owner_id))
            .await?)
    }

    /// Replaces the calling owner's budget; assets left out lose theirs.
    ///
    /// # Errors
    /// `Forbidden` for an agent, `Invalid` for an unsupported asset or too many assets.
    pub async fn set_owner_budget(
        &self,
        principal: &Principal,
        budgets: Budgets,
        audit: &AuditContext,
    ) -> Result<Budgets, AccessError> {
        let Principal::Owner { owner_id } = principal else {
            return Err(AccessError::Forbidden("only an owner sets its budget"));
        };
        self.check_budget_assets(&budgets).await?;
        let set = self
            .ports
            .policies
            .put_budget(BudgetOwner::Owner(*owner_id), *owner_id, &budgets, audit)
            .await?;
        self.ports.feed.committed();
        Ok(set)
    }

    /// What is left of every budget a wallet's spends are decided under: its policy's daily
    /// and monthly limits, its agent's and its owner's budgets in its asset (`None` where
    /// no limit is set). The rolling hour is not counted here (`hourly_remaining` is `None`).
    ///
    /// # Errors
    /// `NotFound` when the wallet is not visible to the principal.
    pub async fn budget_left(
        &self,
        principal: &Principal,
        wallet_id: crate::ids::WalletId,
    ) -> Result<crate::model::Budget, AccessError> {
        let wallet = self.visible_wallet(principal, wallet_id).await?;
        let today = self.ports.clock.now().date_naive();
        let rules = self.ports.policies.get(wallet_id).await?.rules;
        let spent = self
            .ports
            .wallets
            .summary(wallet_id, today)
            .await?
            .ok_or(AccessError::NotFound)?;
        let mut left = crate::model::Budget {
            daily_remaining: rules
                .daily_limit
                .map(|l| l.saturating_sub(spent.today.spent)),
            monthly_remaining: rules
                .monthly_limit
                .map(|l| l.saturating_sub(spent.month.spent)),
            ..crate::model::Budget::default()
        };
        for of in [
            BudgetOwner::Agent(wallet.agent_id),
            BudgetOwner::Owner(wallet.owner_id),
        ] {
            let budgets = self.ports.policies.budget(of).await?;
            let Some(limits) = budgets.get(&wallet.asset) else {
                continue;
            };
            let usage = self
                .ports
                .policies
                .level_spend(of, &wallet.asset, today)
                .await?;
            let level = Some(limits.left(&usage));
            match of {
                BudgetOwner::Agent(_) => left.agent = level,
                BudgetOwner::Owner(_) => left.owner = level,
            }
        }
        Ok(left)
    }

    async fn check_budget_assets(&self, budgets: &Budgets) -> Result<(), AccessError> {
        if budgets.len() > MAX_BUDGET_ASSETS {
            return Err(AccessError::Invalid("a budget names at most 100 assets"));
        }
        for asset in budgets.keys() {
            if self.ports.wallets.asset(asset).await?.is_none() {
                return Err(AccessError::UnknownAsset(asset.clone()));
            }
        }
        Ok(())
    }
}
