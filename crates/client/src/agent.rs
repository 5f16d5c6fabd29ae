//! The agent's side of the API — transfers and payments, holds and captures — and what
//! both sides read: transactions and sessions.

use reqwest::Method;
use uuid::Uuid;
use waiaas_api::{
    CaptureBody, HoldBody, HoldDto, HoldPageDto, HoldQuery, SessionCreated, TransactionDto,
    TransactionPageDto, TransferBody, TxListParams,
};

use crate::{Client, Error, Safety, new_key};

impl Client {
    /// Moves money out of a wallet the calling agent holds, under a new idempotency key.
    /// The policy decides: the answer's `status` is `completed`, or `pending_approval` when
    /// the owner must approve it.
    ///
    /// # Errors
    /// `422 policy_denied` (with `level`, `rule`, `reason`, `budget`, `transaction_id`) and
    /// `422 insufficient_funds` (with `budget`, `transaction_id`): the refused transaction
    /// is recorded. Also `400 invalid_target`, `422 agent_not_active`, `403 forbidden` for
    /// an owner.
    pub async fn transfer(
        &self,
        wallet_id: Uuid,
        transfer: &TransferBody,
    ) -> Result<TransactionDto, Error> {
        self.transfer_with_key(wallet_id, transfer, &new_key())
            .await
    }

    /// [`Client::transfer`] with the caller's idempotency key: the same key with the same
    /// body returns the first answer without moving money again.
    ///
    /// # Errors
    /// As [`Client::transfer`]; `409 idempotency_conflict` for the key with another body.
    pub async fn transfer_with_key(
        &self,
        wallet_id: Uuid,
        transfer: &TransferBody,
        key: &str,
    ) -> Result<TransactionDto, Error> {
        let path = format!("/v1/wallets/{wallet_id}/transfers");
        self.post_keyed(&path, transfer, key).await
    }

    /// Reserves an amount of a wallet for a later capture, under a new idempotency key. The
    /// answer's `status` is `held`, or `pending_approval`.
    ///
    /// # Errors
    /// As [`Client::transfer`]; `400 invalid_expiry`.
    pub async fn create_hold(&self, wallet_id: Uuid, hold: &HoldBody) -> Result<HoldDto, Error> {
        self.create_hold_with_key(wallet_id, hold, &new_key()).await
    }

    /// [`Client::create_hold`] with the caller's idempotency key.
    ///
    /// # Errors
    /// As [`Client::create_hold`].
    pub async fn create_hold_with_key(
        &self,
        wallet_id: Uuid,
        hold: &HoldBody,
        key: &str,
    ) -> Result<HoldDto, Error> {
        let path = format!("/v1/wallets/{wallet_id}/holds");
        self.post_keyed(&path, hold, key).await
    }

    /// Captures a hold — `amount` minor units, or all of it — under a new idempotency key;
    /// the rest is released. Answers the completed transfer or payment.
    ///
    /// # Errors
    /// `409 hold_not_open` (with its `status`), `409 hold_expired`, `422
    /// capture_exceeds_hold` (with `held` and `asked`).
    pub async fn capture(
        &self,
        hold_id: Uuid,
        amount: Option<i64>,
    ) -> Result<TransactionDto, Error> {
        self.capture_with_key(hold_id, amount, &new_key()).await
    }

    /// [`Client::capture`] with the caller's idempotency key.
    ///
    /// # Errors
    /// As [`Client::capture`].
    pub async fn capture_with_key(
        &self,
        hold_id: Uuid,
        amount: Option<i64>,
        key: &str,
    ) -> Result<TransactionDto, Error> {
        let path = format!("/v1/holds/{hold_id}/capture");
        self.post_keyed(&path, &CaptureBody { amount }, key).await
    }

    /// Releases a hold (the agent or the owner); voiding it again answers it as it is.
    ///
    /// # Errors
    /// `409 hold_not_open` for a captured, denied, rejected or failed hold.
    pub async fn void_hold(&self, hold_id: Uuid) -> Result<HoldDto, Error> {
        let path = format!("/v1/holds/{hold_id}/void");
        self.call(self.request(Method::POST, &path), Safety::Repeatable)
            .await
    }

    /// One hold as it stands.
    ///
    /// # Errors
    /// `404 not_found`.
    pub async fn get_hold(&self, hold_id: Uuid) -> Result<HoldDto, Error> {
        self.get(&format!("/v1/holds/{hold_id}")).await
    }

    /// A page of a wallet's holds, newest first.
    ///
    /// # Errors
    /// `400 invalid_query`, `invalid_cursor`; `404 not_found`.
    pub async fn list_holds(
        &self,
        wallet_id: Uuid,
        query: &HoldQuery,
    ) -> Result<HoldPageDto, Error> {
        let path = format!("/v1/wallets/{wallet_id}/holds");
        let request = self.request(Method::GET, &path).query(query);
        self.call(request, Safety::Repeatable).await
    }

    /// One transaction touching a wallet the caller may see.
    ///
    /// # Errors
    /// `404 not_found`.
    pub async fn get_transaction(&self, transaction_id: Uuid) -> Result<TransactionDto, Error> {
        self.get(&format!("/v1/transactions/{transaction_id}"))
            .await
    }

    /// A page of a wallet's transactions, newest first, narrowed by `query` and by
    /// `metadata` pairs (`("order_id", "A-1042")`: the metadata holds that string).
    ///
    /// # Errors
    /// `400 invalid_query`, `invalid_cursor`; `404 not_found`.
    pub async fn transactions(
        &self,
        wallet_id: Uuid,
        query: &TxListParams,
        metadata: &[(&str, &str)],
    ) -> Result<TransactionPageDto, Error> {
        self.list_transactions(
            &format!("/v1/wallets/{wallet_id}/transactions"),
            query,
            metadata,
        )
        .await
    }

    /// A page of the transactions of every wallet of the calling owner, newest first.
    ///
    /// # Errors
    /// As [`Client::transactions`]; `403 forbidden` for an agent.
    pub async fn owner_transactions(
        &self,
        query: &TxListParams,
        metadata: &[(&str, &str)],
    ) -> Result<TransactionPageDto, Error> {
        self.list_transactions("/v1/transactions", query, metadata)
            .await
    }

    async fn list_transactions(
        &self,
        path: &str,
        query: &TxListParams,
        metadata: &[(&str, &str)],
    ) -> Result<TransactionPageDto, Error> {
        let pairs: Vec<(String, &str)> = metadata
            .iter()
            .map(|(key, value)| (format!("metadata.{key}"), *value))
            .collect();
        let request = self.request(Method::GET, path).query(query).query(&pairs);
        self.call(request, Safety::Repeatable).await
    }

    /// Opens a session with the client's API key: a short-lived token to use instead.
    ///
    /// # Errors
    /// `403 forbidden` when the credential is already a session token.
    pub async fn create_session(&self) -> Result<SessionCreated, Error> {
        self.call(self.request(Method::POST, "/v1/sessions"), Safety::Once)
            .await
    }

    /// Ends the session whose token is the client's credential.
    ///
    /// # Errors
    /// `403 forbidden` when the credential is an API key.
    pub async fn end_session(&self) -> Result<(), Error> {
        let request = self.request(Method::DELETE, "/v1/sessions/current");
        self.call_empty(request, Safety::Repeatable).await
    }
}
