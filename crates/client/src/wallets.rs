//! Wallets as their owner manages them: opening and reading them (the holding agent reads
//! them too), policies, deposits, sweeps and mandates.

use reqwest::Method;
use uuid::Uuid;
use waiaas_api::{
    BalanceDto, CreateWallet, DepositBody, Items, MandateBody, MandateDto, PolicyBody, PolicyDto,
    SummaryDto, SweepBody, TransactionDto, WalletDto,
};

use crate::{Client, Error, Safety, new_key};

impl Client {
    /// Opens a wallet of `asset` (`USD`…) for an agent.
    ///
    /// # Errors
    /// `404 not_found` for the agent; `422 unknown_asset`.
    pub async fn create_wallet(
        &self,
        agent_id: Uuid,
        asset: &str,
        name: Option<&str>,
    ) -> Result<WalletDto, Error> {
        let path = format!("/v1/agents/{agent_id}/wallets");
        let body = CreateWallet {
            asset: asset.to_owned(),
            name: name.map(str::to_owned),
        };
        self.send_json(Method::POST, &path, &body, Safety::Once)
            .await
    }

    /// The wallets the caller may see, or only one agent's.
    ///
    /// # Errors
    /// As every call: see [`Error`].
    pub async fn list_wallets(&self, agent_id: Option<Uuid>) -> Result<Vec<WalletDto>, Error> {
        let filter = waiaas_api::WalletFilter { agent_id };
        let request = self.request(Method::GET, "/v1/wallets").query(&filter);
        let items: Items<WalletDto> = self.call(request, Safety::Repeatable).await?;
        Ok(items.items)
    }

    /// One wallet.
    ///
    /// # Errors
    /// `404 not_found`.
    pub async fn get_wallet(&self, wallet_id: Uuid) -> Result<WalletDto, Error> {
        self.get(&format!("/v1/wallets/{wallet_id}")).await
    }

    /// A wallet's balance, held and available amounts.
    ///
    /// # Errors
    /// `404 not_found`.
    pub async fn balance(&self, wallet_id: Uuid) -> Result<BalanceDto, Error> {
        self.get(&format!("/v1/wallets/{wallet_id}/balance")).await
    }

    /// A wallet's spend today and this month, and the budget left at every level.
    ///
    /// # Errors
    /// `404 not_found`.
    pub async fn summary(&self, wallet_id: Uuid) -> Result<SummaryDto, Error> {
        self.get(&format!("/v1/wallets/{wallet_id}/summary")).await
    }

    /// A wallet's policy.
    ///
    /// # Errors
    /// `404 not_found`.
    pub async fn policy(&self, wallet_id: Uuid) -> Result<PolicyDto, Error> {
        self.get(&format!("/v1/wallets/{wallet_id}/policy")).await
    }

    /// Replaces a wallet's policy (a rule left out does not restrict).
    ///
    /// # Errors
    /// `400 invalid_policy`, `invalid_amount`, `invalid_value`; `403 forbidden` for the agent.
    pub async fn set_policy(
        &self,
        wallet_id: Uuid,
        rules: &PolicyBody,
    ) -> Result<PolicyDto, Error> {
        let path = format!("/v1/wallets/{wallet_id}/policy");
        self.send_json(Method::PUT, &path, rules, Safety::Repeatable)
            .await
    }

    /// Credits a wallet with `amount` minor units from outside, under a new idempotency key.
    ///
    /// # Errors
    /// `400 invalid_amount`; `404 not_found`; `409 wallet_closed`.
    pub async fn deposit(
        &self,
        wallet_id: Uuid,
        amount: i64,
        memo: Option<&str>,
    ) -> Result<TransactionDto, Error> {
        let body = DepositBody {
            amount,
            memo: memo.map(str::to_owned),
            metadata: None,
        };
        self.deposit_with_key(wallet_id, &body, &new_key()).await
    }

    /// [`Client::deposit`] with the caller's body and idempotency key: the same key returns
    /// the first result.
    ///
    /// # Errors
    /// As [`Client::deposit`]; `409 idempotency_conflict` for the key with another body.
    pub async fn deposit_with_key(
        &self,
        wallet_id: Uuid,
        body: &DepositBody,
        key: &str,
    ) -> Result<TransactionDto, Error> {
        self.post_keyed(&format!("/v1/wallets/{wallet_id}/deposits"), body, key)
            .await
    }

    /// Moves a wallet's whole balance to another wallet of the owner, under a new key.
    ///
    /// # Errors
    /// `422 nothing_to_sweep`, `asset_mismatch`; `409 wallet_closed`.
    pub async fn sweep(
        &self,
        wallet_id: Uuid,
        to_wallet_id: Uuid,
    ) -> Result<TransactionDto, Error> {
        self.sweep_with_key(wallet_id, to_wallet_id, &new_key())
            .await
    }

    /// [`Client::sweep`] with the caller's idempotency key.
    ///
    /// # Errors
    /// As [`Client::sweep`].
    pub async fn sweep_with_key(
        &self,
        wallet_id: Uuid,
        to_wallet_id: Uuid,
        key: &str,
    ) -> Result<TransactionDto, Error> {
        let path = format!("/v1/wallets/{wallet_id}/sweep");
        self.post_keyed(&path, &SweepBody { to_wallet_id }, key)
            .await
    }

    /// Issues a mandate: a pre-approval of the agent's spending from a wallet.
    ///
    /// # Errors
    /// `422 invalid_mandate`; `404 not_found`.
    pub async fn create_mandate(
        &self,
        wallet_id: Uuid,
        mandate: &MandateBody,
    ) -> Result<MandateDto, Error> {
        let path = format!("/v1/wallets/{wallet_id}/mandates");
        self.send_json(Method::POST, &path, mandate, Safety::Once)
            .await
    }

    /// A wallet's mandates, newest first.
    ///
    /// # Errors
    /// `404 not_found`.
    pub async fn list_mandates(&self, wallet_id: Uuid) -> Result<Vec<MandateDto>, Error> {
        let items: Items<MandateDto> = self
            .get(&format!("/v1/wallets/{wallet_id}/mandates"))
            .await?;
        Ok(items.items)
    }

    /// One mandate as it stands.
    ///
    /// # Errors
    /// `404 not_found`.
    pub async fn get_mandate(&self, mandate_id: Uuid) -> Result<MandateDto, Error> {
        self.get(&format!("/v1/mandates/{mandate_id}")).await
    }

    /// Revokes a mandate.
    ///
    /// # Errors
    /// `404 not_found`.
    pub async fn revoke_mandate(&self, mandate_id: Uuid) -> Result<MandateDto, Error> {
        let path = format!("/v1/mandates/{mandate_id}");
        self.call(self.request(Method::DELETE, &path), Safety::Repeatable)
            .await
    }
}
