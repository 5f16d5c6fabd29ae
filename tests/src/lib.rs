//! The end-to-end harness: a real instance of the service on a free port, on its own
//! PostgreSQL database and its own Redis key prefix, and a client for it.

pub mod browser;

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use waiaas_app::{App, Settings};
use waiaas_testkit::TestDb;

/// The bootstrap token every test instance accepts.
pub const BOOTSTRAP: &str = "test-bootstrap-token";

/// How to start a test instance.
#[derive(Debug, Clone)]
pub struct Options {
    /// Redis URL; `None` uses `WAIAAS_TEST_REDIS_URL`.
    pub redis_url: Option<String>,
    /// Whether Redis is used at all.
    pub redis: bool,
    /// The key prefix; `None` makes a unique one.
    pub key_prefix: Option<String>,
    /// Requests per second per principal (`None` disables rate limiting).
    pub rate: Option<(f64, u32)>,
    /// Request body limit.
    pub body_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis: true,
            key_prefix: None,
            rate: None,
            body_limit: 64 * 1024,
        }
    }
}

/// A running instance.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The instance.
    pub app: App,
    /// The client.
    pub client: reqwest::Client,
    /// The Redis key prefix it uses.
    pub key_prefix: String,
    server: tokio::task::JoinHandle<()>,
}

/// A response: status and JSON body (`Value::Null` when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// `body[field]` as a string.
    #[must_use]
    pub fn str(&self, field: &str) -> String {
        self.body[field].as_str().unwrap_or_default().to_owned()
    }

    /// The error code of an error reply.
    #[must_use]
    pub fn code(&self) -> String {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl TestApp {
    /// Settings for an instance on `db`.
    #[must_use]
    pub fn settings(db: &TestDb, opts: &Options) -> Settings {
        Self::settings_for(&db.url, opts)
    }

    /// Settings for an instance on the database at `url`.
    #[must_use]
    pub fn settings_for(url: &str, opts: &Options) -> Settings {
        let mut s = Settings::default();
        s.server.listen = "127.0.0.1:0".to_owned();
        s.server.body_limit_bytes = opts.body_limit;
        s.database.url = url.to_owned();
        s.database.min_connections = 0;
        s.database.max_connections = 6;
        s.database.auto_migrate = false;
        s.database.create_database = false;
        s.redis.enabled = opts.redis;
        s.redis.url = opts.redis_url.clone().unwrap_or_else(|| {
            std::env::var("WAIAAS_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
        });
        s.redis.key_prefix = opts
            .key_prefix
            .clone()
            .unwrap_or_else(|| format!("t-{}/", &uuid::Uuid::new_v4().simple().to_string()[..12]));
        s.auth.bootstrap_token = Some(BOOTSTRAP.to_owned().into());
        s.rate_limit.enabled = opts.rate.is_some();
        if let Some((per_second, burst)) = opts.rate {
            s.rate_limit.per_second = per_second;
            s.rate_limit.burst = burst;
        }
        s
    }

    /// Starts an instance on `db`.
    ///
    /// # Panics
    /// When it cannot start.
    pub async fn spawn(db: &TestDb, opts: Options) -> Self {
        let settings = Self::settings(db, &opts);
        Self::spawn_with(settings).await
    }

    /// Starts an instance with these settings.
    ///
    /// # Panics
    /// When it cannot start.
    pub async fn spawn_with(settings: Settings) -> Self {
        Self::start(settings, None).await
    }

    /// Starts an instance serving HTTPS (`server.tls_cert` and `tls_key` set) at
    /// `https://localhost:<port>`, with a client that trusts only `ca`.
    ///
    /// # Panics
    /// When it cannot start.
    pub async fn spawn_tls(settings: Settings, ca: &std::path::Path) -> Self {
        Self::start(settings, Some(ca)).await
    }

    async fn start(settings: Settings, ca: Option<&std::path::Path>) -> Self {
        let key_prefix = settings.redis.key_prefix.clone();
        let app = waiaas_app::build(&settings).await.expect("instance");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("free port");
        let addr = listener.local_addr().expect("address");
        let router =
            waiaas_app::serve::router(&app).into_make_service_with_connect_info::<SocketAddr>();
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(30));
        let (server, base) = match (&settings.server.tls_cert, &settings.server.tls_key, ca) {
            (Some(cert), Some(key), Some(ca)) => {
                let config = waiaas_app::tls::server_config(cert.as_ref(), key.as_ref())
                    .expect("server certificate");
                let tls = waiaas_app::tls::TlsListener::new(listener, config).expect("listener");
                let root = reqwest::Certificate::from_pem(&std::fs::read(ca).expect("CA file"))
                    .expect("CA certificate");
                client = client
                    .tls_built_in_root_certs(false)
                    .add_root_certificate(root)
                    .https_only(true);
                (
                    tokio::spawn(async move {
                        let _ = axum::serve(axum::serve::ListenerExt::tap_io(tls, |_| {}), router)
                            .await;
                    }),
                    format!("https://localhost:{}", addr.port()),
                )
            }
            _ => (
                tokio::spawn(async move {
                    let _ = axum::serve(listener, router).await;
                }),
                format!("http://{addr}"),
            ),
        };
        Self {
            base,
            app,
            client: client.build().expect("client"),
            key_prefix,
            server,
        }
    }

    /// Sends a request with an optional bearer token, body and idempotency key.
    ///
    /// # Panics
    /// When the request cannot be sent at all.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            headers,
        }
    }

    /// `GET`.
    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None, None).await
    }

    /// `POST` with a JSON body.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body), None)
            .await
    }

    /// Creates an owner; returns its id and API key.
    pub async fn owner(&self, name: &str) -> (String, String) {
        let r = self
            .post("/v1/owners", BOOTSTRAP, json!({ "name": name }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        (
            r.body["owner"]["id"].as_str().unwrap().to_owned(),
            r.str("api_key"),
        )
    }

    /// Creates an agent of the owner with an API key; returns (agent id, agent key).
    pub async fn agent(&self, owner_key: &str, name: &str) -> (String, String) {
        let r = self
            .post("/v1/agents", owner_key, json!({ "name": name }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.str("id");
        let k = self
            .post(&format!("/v1/agents/{id}/keys"), owner_key, json!({}))
            .await;
        assert_eq!(k.status, StatusCode::CREATED, "{:?}", k.body);
        (id, k.str("api_key"))
    }

    /// Opens a wallet for the agent and deposits into it; returns its id.
    pub async fn wallet(
        &self,
        owner_key: &str,
        agent_id: &str,
        asset: &str,
        deposit: i64,
    ) -> String {
        let r = self
            .post(
                &format!("/v1/agents/{agent_id}/wallets"),
                owner_key,
                json!({ "asset": asset }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.str("id");
        if deposit > 0 {
            let d = self
                .call(
                    Method::POST,
                    &format!("/v1/wallets/{id}/deposits"),
                    Some(owner_key),
                    Some(json!({ "amount": deposit })),
                    Some(&uuid::Uuid::new_v4().to_string()),
                )
                .await;
            assert_eq!(d.status, StatusCode::CREATED, "{:?}", d.body);
        }
        id
    }

    /// A transfer from `from` to `to` with an idempotency key.
    pub async fn transfer(
        &self,
        agent_key: &str,
        from: &str,
        to: &str,
        amount: i64,
        key: &str,
    ) -> Reply {
        self.call(
            Method::POST,
            &format!("/v1/wallets/{from}/transfers"),
            Some(agent_key),
            Some(json!({ "amount": amount, "to_wallet_id": to })),
            Some(key),
        )
        .await
    }

    /// The instance's `/metrics` text.
    ///
    /// # Panics
    /// When it cannot be read.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics requested")
            .text()
            .await
            .expect("metrics read")
    }

    /// Stops serving (the instance's background work too).
    pub async fn stop(self) {
        self.server.abort();
        self.app.shutdown().await;
    }
}

/// A TCP proxy in front of the shared test PostgreSQL server, and the URL of `db` through it
/// (to cut an instance off from PostgreSQL, or break its connections).
///
/// # Panics
/// When the server's address cannot be found or the proxy cannot start.
pub async fn proxied_database(db: &TestDb) -> (waiaas_testkit::TcpProxy, String) {
    // The shared test server's address, from its URL (`postgres://user@host:port/db`).
    let admin = waiaas_testkit::admin_url()
        .await
        .expect("test database server");
    let server = admin
        .rsplit_once('@')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(host, _)| host.replace("localhost", "127.0.0.1"))
        .expect("host:port in the server's URL");
    let address = tokio::net::lookup_host(&server)
        .await
        .expect("the server's address")
        .next()
        .expect("an address");
    let proxy = waiaas_testkit::TcpProxy::start(address)
        .await
        .expect("proxy");
    // Plain text: the proxy reads the protocol to break a connection at a chosen message
    // (the server offers TLS, which the pool would otherwise use).
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/{}?sslmode=disable",
        proxy.port(),
        db.name
    );
    (proxy, url)
}

/// Waits (at most `limit`) until the instance is connected to Redis again and the server on
/// `port` (a promoted replica, emptied or not) holds keys: the instance has followed a
/// failover and writes there. `poke` runs between checks (requests that make it write).
///
/// # Panics
/// When that does not happen in time.
pub async fn wait_writes_reach<F, Fut>(app: &TestApp, port: u16, limit: Duration, mut poke: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let redis = app.app.redis.clone().expect("Redis enabled");
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        poke().await;
        let keys = waiaas_testkit::raw_command(port, &["DBSIZE"])
            .await
            .unwrap_or_default();
        if redis.is_connected() && keys.parse::<u64>().unwrap_or(0) > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the service never wrote to the promoted replica"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
