//! The owner's side of the API: registration, agents and their keys, budgets, approvals
//! and webhooks.

use reqwest::Method;
use uuid::Uuid;
use waiaas_api::{
    AgentDto, BudgetsDto, CreateAgent, CreateKey, CreateOwner, HomeDto, Items, KeyCreated, KeyDto,
    OwnerCreated, SettableStatus, TransactionDto, UpdateAgent, WebhookBody, WebhookDto,
    WebhookWithSecretDto,
};

use crate::{Client, Error, Safety};

impl Client {
    /// Registers an owner; the client's credential must be the operator's bootstrap token.
    /// The answer holds the owner's first API key, shown once.
    ///
    /// # Errors
    /// `401 unauthenticated` without the bootstrap token; `400 invalid_value` for a bad name.
    pub async fn create_owner(&self, name: &str) -> Result<OwnerCreated, Error> {
        let body = CreateOwner {
            name: name.to_owned(),
        };
        self.send_json(Method::POST, "/v1/owners", &body, Safety::Once)
            .await
    }

    /// Registers an agent of the calling owner.
    ///
    /// # Errors
    /// `403 forbidden` for an agent's credential; `400 invalid_value` for a bad name.
    pub async fn create_agent(&self, name: &str) -> Result<AgentDto, Error> {
        let body = CreateAgent {
            name: name.to_owned(),
        };
        self.send_json(Method::POST, "/v1/agents", &body, Safety::Once)
            .await
    }

    /// The owner's home: every agent that is not deleted with its wallets (balance, held,
    /// available), today's and this month's spend against the budget at each level, and the
    /// transactions waiting for the owner's approval.
    ///
    /// # Errors
    /// `403 forbidden` for an agent's credential.
    pub async fn home(&self) -> Result<HomeDto, Error> {
        self.get("/v1/home").await
    }

    /// The owner's agents (an agent's credential sees only itself).
    ///
    /// # Errors
    /// As every call: see [`Error`].
    pub async fn list_agents(&self) -> Result<Vec<AgentDto>, Error> {
        let items: Items<AgentDto> = self.get("/v1/agents").await?;
        Ok(items.items)
    }

    /// One agent.
    ///
    /// # Errors
    /// `404 not_found` when missing, deleted or another tenant's.
    pub async fn get_agent(&self, agent_id: Uuid) -> Result<AgentDto, Error> {
        self.get(&format!("/v1/agents/{agent_id}")).await
    }

    /// Suspends an agent: it may read but no longer move money.
    ///
    /// # Errors
    /// `404 not_found`; `403 forbidden` for an agent's credential.
    pub async fn suspend_agent(&self, agent_id: Uuid) -> Result<AgentDto, Error> {
        self.set_agent_status(agent_id, SettableStatus::Suspended)
            .await
    }

    /// Lets a suspended agent move money again.
    ///
    /// # Errors
    /// `404 not_found`; `403 forbidden` for an agent's credential.
    pub async fn resume_agent(&self, agent_id: Uuid) -> Result<AgentDto, Error> {
        self.set_agent_status(agent_id, SettableStatus::Active)
            .await
    }

    async fn set_agent_status(
        &self,
        agent_id: Uuid,
        status: SettableStatus,
    ) -> Result<AgentDto, Error> {
        let path = format!("/v1/agents/{agent_id}");
        let body = UpdateAgent { status };
        self.send_json(Method::PATCH, &path, &body, Safety::Repeatable)
            .await
    }

    /// Deletes an agent: its keys are revoked and its wallets closed (sweep them).
    ///
    /// # Errors
    /// `404 not_found` when missing or already deleted.
    pub async fn delete_agent(&self, agent_id: Uuid) -> Result<(), Error> {
        let request = self.request(Method::DELETE, &format!("/v1/agents/{agent_id}"));
        self.call_empty(request, Safety::Repeatable).await
    }

    /// Issues an API key for an agent, valid for `expires_in_s` seconds or forever; the key
    /// is in the answer, shown once.
    ///
    /// # Errors
    /// `404 not_found`; `400` for a lifetime out of bounds.
    pub async fn create_agent_key(
        &self,
        agent_id: Uuid,
        expires_in_s: Option<i64>,
    ) -> Result<KeyCreated, Error> {
        let path = format!("/v1/agents/{agent_id}/keys");
        let body = CreateKey { expires_in_s };
        self.send_json(Method::POST, &path, &body, Safety::Once)
            .await
    }

    /// An agent's keys (never their secrets).
    ///
    /// # Errors
    /// `404 not_found`.
    pub async fn list_agent_keys(&self, agent_id: Uuid) -> Result<Vec<KeyDto>, Error> {
        let items: Items<KeyDto> = self.get(&format!("/v1/agents/{agent_id}/keys")).await?;
        Ok(items.items)
    }

    /// Revokes one of an agent's keys; it stops working at once.
    ///
    /// # Errors
    /// `404 not_found` for the agent or the key.
    pub async fn revoke_agent_key(&self, agent_id: Uuid, key_id: Uuid) -> Result<(), Error> {
        let path = format!("/v1/agents/{agent_id}/keys/{key_id}");
        self.call_empty(self.request(Method::DELETE, &path), Safety::Repeatable)
            .await
    }

    /// An agent's budget, per asset.
    ///
    /// # Errors
    /// `404 not_found`.
    pub async fn agent_budget(&self, agent_id: Uuid) -> Result<BudgetsDto, Error> {
        self.get(&format!("/v1/agents/{agent_id}/budget")).await
    }

    /// Replaces an agent's budget.
    ///
    /// # Errors
    /// `400 invalid_budget`; `404 not_found`.
    pub async fn set_agent_budget(
        &self,
        agent_id: Uuid,
        budget: &BudgetsDto,
    ) -> Result<BudgetsDto, Error> {
        let path = format!("/v1/agents/{agent_id}/budget");
        self.send_json(Method::PUT, &path, budget, Safety::Repeatable)
            .await
    }

    /// The calling owner's budget, per asset.
    ///
    /// # Errors
    /// `403 forbidden` for an agent.
    pub async fn owner_budget(&self) -> Result<BudgetsDto, Error> {
        self.get("/v1/owners/me/budget").await
    }

    /// Replaces the calling owner's budget.
    ///
    /// # Errors
    /// `400 invalid_budget`; `403 forbidden` for an agent.
    pub async fn set_owner_budget(&self, budget: &BudgetsDto) -> Result<BudgetsDto, Error> {
        self.send_json(
            Method::PUT,
            "/v1/owners/me/budget",
            budget,
            Safety::Repeatable,
        )
        .await
    }

    /// Approves a transaction waiting for approval (safe to repeat).
    ///
    /// # Errors
    /// `409 not_pending` (rejected, or never pending), `409 approval_expired`.
    pub async fn approve(&self, transaction_id: Uuid) -> Result<TransactionDto, Error> {
        self.decide(transaction_id, "approve").await
    }

    /// Rejects a transaction waiting for approval: nothing moves (safe to repeat).
    ///
    /// # Errors
    /// `409 not_pending` (approved, or never pending), `409 approval_expired`.
    pub async fn reject(&self, transaction_id: Uuid) -> Result<TransactionDto, Error> {
        self.decide(transaction_id, "reject").await
    }

    async fn decide(&self, transaction_id: Uuid, verb: &str) -> Result<TransactionDto, Error> {
        let path = format!("/v1/transactions/{transaction_id}/{verb}");
        self.call(self.request(Method::POST, &path), Safety::Repeatable)
            .await
    }

    /// Registers a webhook endpoint; the answer holds its signing secret, shown once.
    ///
    /// # Errors
    /// `422 invalid_webhook`.
    pub async fn create_webhook(
        &self,
        webhook: &WebhookBody,
    ) -> Result<WebhookWithSecretDto, Error> {
        self.send_json(Method::POST, "/v1/webhooks", webhook, Safety::Once)
            .await
    }

    /// The owner's webhook endpoints.
    ///
    /// # Errors
    /// `403 forbidden` for an agent.
    pub async fn list_webhooks(&self) -> Result<Vec<WebhookDto>, Error> {
        let items: Items<WebhookDto> = self.get("/v1/webhooks").await?;
        Ok(items.items)
    }

    /// Deletes a webhook endpoint.
    ///
    /// # Errors
    /// `404 not_found`.
    pub async fn delete_webhook(&self, webhook_id: Uuid) -> Result<(), Error> {
        let path = format!("/v1/webhooks/{webhook_id}");
        self.call_empty(self.request(Method::DELETE, &path), Safety::Repeatable)
            .await
    }
}
