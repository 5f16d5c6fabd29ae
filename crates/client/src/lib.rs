//! A typed Rust client of the WAIaaS HTTP API.
//!
//! The request and response types are those the server itself renders and parses (the
//! `waiaas-api` crate, re-exported as [`api`]), so client and server cannot drift apart.
//! One [`Client`] speaks for one credential: an owner's API key (agents, wallets, policies,
//! deposits, approvals…), an agent's (transfers, holds, captures…) or a session token.
//!
//! - Errors are typed: [`Error::Api`] carries the status, the stable [`ErrorCode`], the
//!   message and the fields some codes add (`policy_denied` adds `rule`, `budget`,
//!   `transaction_id`…); transport failures are [`Error::Transport`].
//! - Money-moving calls (deposits, transfers, sweeps, holds, captures) send an
//!   `Idempotency-Key`: a new UUID v4 per call unless the caller gives one (`*_with_key`).
//! - A `503` (and a connection that fails before any answer) is retried with the same
//!   request — the same key — honouring `Retry-After` up to a cap, a bounded number of times
//!   ([`RetryPolicy`]). Calls that are not safe to repeat (creating an agent, a wallet…) are
//!   retried only when the request cannot have been acted on.
//! - [`Client::wallet_events`] is a typed stream of a wallet's events that reconnects after
//!   a dropped connection and resumes after the last event it saw.
//!
//! ```no_run
//! use futures::StreamExt as _;
//! use waiaas_client::{Client, Error, ErrorCode, api::TransferBody};
//!
//! # async fn run() -> Result<(), Error> {
//! let base = "http://127.0.0.1:8080";
//! let owner = Client::new(base, "wak_owner…")?;
//! let agent = owner.create_agent("buyer").await?;
//! let key = owner.create_agent_key(agent.id, None).await?;
//! let wallet = owner.create_wallet(agent.id, "USD", None).await?;
//! owner.deposit(wallet.id, 10_000, None).await?;
//!
//! let agent = Client::new(base, key.api_key)?;
//! let payment = TransferBody {
//!     amount: 2_500,
//!     to_wallet_id: None,
//!     destination: Some("cloud-gpu".into()),
//!     memo: None,
//!     metadata: None,
//!     mandate_id: None,
//! };
//! match agent.transfer(wallet.id, &payment).await {
//!     Ok(tx) => println!("{} {}", tx.id, tx.status), // `completed` or `pending_approval`
//!     Err(e) if e.code() == Some(&ErrorCode::PolicyDenied) => {
//!         println!("denied by rule {}", e.detail("rule").unwrap_or_default());
//!     }
//!     Err(e) => return Err(e),
//! }
//!
//! let mut events = Box::pin(owner.wallet_events(wallet.id, None));
//! while let Some(event) = events.next().await {
//!     let event = event?;
//!     println!("{} {}", event.id, event.kind);
//! }
//! # Ok(())
//! # }
//! ```

mod agent;
mod error;
mod events;
mod owner;
mod retry;
mod wallets;

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::Error;
pub use reqwest::StatusCode;
pub use retry::RetryPolicy;
pub use waiaas_api as api;
pub use waiaas_api::{ErrorCode, WalletEvent};

/// How long one attempt of a call may take, unless the builder says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long making a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one WAIaaS service, speaking for one credential. Cheap to clone (the
/// connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    timeout: Duration,
    retry: RetryPolicy,
}

/// Builds a [`Client`] with other settings than [`Client::new`]'s.
#[derive(Debug)]
pub struct ClientBuilder {
    base: String,
    token: String,
    timeout: Duration,
    retry: RetryPolicy,
    http: Option<reqwest::Client>,
}

impl ClientBuilder {
    /// How long one attempt of a call may take (30 s by default). Event streams are not
    /// bounded by it.
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// When and how often to retry ([`RetryPolicy::default`] by default).
    #[must_use]
    pub const fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Uses this `reqwest` client (its TLS roots, proxy, pool) instead of a new one.
    #[must_use]
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`Error::Transport`] when the TLS stack cannot be set up.
    pub fn build(self) -> Result<Client, Error> {
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build()
                .map_err(Error::Transport)?,
        };
        Ok(Client {
            http,
            base: self.base.trim_end_matches('/').to_owned(),
            token: self.token,
            timeout: self.timeout,
            retry: self.retry,
        })
    }
}

impl Client {
    /// A client of the service at `base` (`https://wallets.example.com`) presenting `token`
    /// (an API key `wak_…`, a session token `wst_…`, or the bootstrap token to register an
    /// owner) as its bearer credential.
    ///
    /// # Errors
    /// [`Error::Transport`] when the TLS stack cannot be set up.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Result<Self, Error> {
        Self::builder(base, token).build()
    }

    /// A builder, to set the timeout, the retry policy or the `reqwest` client.
    pub fn builder(base: impl Into<String>, token: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base.into(),
            token: token.into(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            http: None,
        }
    }

    /// The same service and settings with another credential (an agent's key, say).
    #[must_use]
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            ..self.clone()
        }
    }

    /// The service's base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request to `path` with the credential, not yet bounded in time.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends a call (retrying as its [`Safety`] allows) and reads its JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        safety: Safety,
    ) -> Result<T, Error> {
        let response = self.send(request.timeout(self.timeout), safety).await?;
        error::json(response).await
    }

    /// Sends a call that answers `204 No Content`.
    async fn call_empty(&self, request: RequestBuilder, safety: Safety) -> Result<(), Error> {
        self.send(request.timeout(self.timeout), safety).await?;
        Ok(())
    }

    /// `GET path`.
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.call(self.request(Method::GET, path), Safety::Repeatable)
            .await
    }

    /// `method path` with a JSON body.
    async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        safety: Safety,
    ) -> Result<T, Error> {
        self.call(self.request(method, path).json(body), safety)
            .await
    }

    /// `POST path` with a JSON body and an `Idempotency-Key`: repeatable by construction.
    async fn post_keyed<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        key: &str,
    ) -> Result<T, Error> {
        let request = self
            .request(Method::POST, path)
            .header("Idempotency-Key", key)
            .json(body);
        self.call(request, Safety::Repeatable).await
    }
}

/// Whether a call may be sent again when its fate is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Safety {
    /// Repeating it changes nothing more than the first time did: reads, `PUT`s, `DELETE`s,
    /// owner decisions, voids, and every call with an `Idempotency-Key`.
    Repeatable,
    /// Repeating it could do it twice (creating an agent, a wallet, a key…): retried only
    /// when it cannot have been acted on.
    Once,
}

/// A fresh idempotency key: a UUID v4.
fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}
