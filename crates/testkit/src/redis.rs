//! Redis for tests: the shared server's URL, a key prefix per test, and `redis-server`
//! processes (alone or as a cluster) that tests start, pause, kill and restart.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::TestCerts;

/// The variable naming the shared Redis server for tests.
pub const REDIS_URL_VAR: &str = "WAIAAS_TEST_REDIS_URL";

/// How long a server gets to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The shared test Redis, from `WAIAAS_TEST_REDIS_URL`.
///
/// # Panics
/// When the variable is not set, with a message that says what to set.
#[must_use]
pub fn test_redis_url() -> String {
    std::env::var(REDIS_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "no Redis for tests: set {REDIS_URL_VAR} (for example redis://127.0.0.1:6379) \
             or run `scripts/test`, which does this for you"
        )
    })
}

/// A key prefix of its own for one test (`t-<12 hex>/`), so tests share one server.
#[must_use]
pub fn unique_prefix() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t-{}/", &id[..12])
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn scratch_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("waiaas-redis-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Sends one command on a fresh connection and returns the reply's text (a status, an
/// integer or a bulk string); an error reply is an error.
pub async fn raw_command(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    conn.write_all(request.as_bytes()).await?;
    let mut reply = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            bail!("connection closed before a full reply");
        }
        reply.extend_from_slice(&buf[..n]);
        if let Some(text) = parse_reply(&reply)? {
            return Ok(text);
        }
    }
}

/// Parses a complete RESP reply of a simple kind, or says it needs more bytes.
fn parse_reply(reply: &[u8]) -> anyhow::Result<Option<String>> {
    let text = String::from_utf8_lossy(reply);
    let Some((head, rest)) = text.split_once("\r\n") else {
        return Ok(None);
    };
    match head.split_at(1) {
        ("+" | ":", value) => Ok(Some(value.to_owned())),
        ("-", error) => bail!("Redis error: {error}"),
        ("$", len) => {
            let len: usize = len.parse().context("bad bulk length")?;
            Ok((rest.len() >= len).then(|| rest[..len].to_owned()))
        }
        _ => bail!("unexpected reply {head}"),
    }
}

/// A `redis-server` process of one test. Killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    extra: Vec<String>,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port, with nothing kept on disk, and waits until it answers.
    ///
    /// # Errors
    /// When `redis-server` cannot be run or does not answer in time.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Vec::new(), scratch_dir()?).await
    }

    /// As [`RedisServer::start`], with extra `redis-server` arguments (which win over the
    /// defaults), for example `["--appendonly", "yes"]`: a restart then reloads what was
    /// written to disk, which may be older than what was written since.
    ///
    /// # Errors
    /// When `redis-server` cannot be run or does not answer in time.
    pub async fn start_with_args(args: &[&str]) -> anyhow::Result<Self> {
        let extra = args.iter().map(|a| (*a).to_owned()).collect();
        Self::start_with(extra, scratch_dir()?).await
    }

    async fn start_with(extra: Vec<String>, dir: PathBuf) -> anyhow::Result<Self> {
        let mut server = Self {
            port: free_port()?,
            extra,
            dir,
            child: None,
        };
        // Another process may take the free port first: try a few.
        let mut tries = 0;
        while let Err(e) = server.spawn().await {
            tries += 1;
            if tries == 3 {
                return Err(e);
            }
            server.port = free_port()?;
        }
        Ok(server)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("running redis-server (is Redis 7 installed?)")?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if raw_command(self.port, &["PING"])
                .await
                .is_ok_and(|r| r == "PONG")
            {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!(
                    "redis-server on port {} exited at start: {status}",
                    self.port
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "redis-server on port {} did not answer PING within {START_TIMEOUT:?}",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `redis://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    #[must_use]
    pub fn node(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the process (SIGKILL) and waits for it to end: its data is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty, on the same port.
    ///
    /// # Errors
    /// When it does not answer in time.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn().await
    }

    /// Stops it from serving any client for `duration` (`CLIENT PAUSE … ALL`); returns at once.
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn pause(&self, duration: Duration) -> anyhow::Result<()> {
        let millis = duration.as_millis().to_string();
        raw_command(self.port, &["CLIENT", "PAUSE", &millis, "ALL"]).await?;
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of `masters` primaries and no replicas. Killed when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    servers: Vec<RedisServer>,
    /// Each server's TLS port, when the cluster speaks TLS.
    tls_ports: Vec<u16>,
}

impl RedisCluster {
    /// Starts the servers, creates the cluster with `redis-cli --cluster create`, and waits
    /// until every node says `cluster_state:ok`.
    ///
    /// # Errors
    /// When a server does not start or the cluster does not form in time.
    pub async fn start(masters: usize) -> anyhow::Result<Self> {
        Self::start_with(masters, None).await
    }

    /// As [`RedisCluster::start`], with TLS between clients and nodes and on the cluster bus;
    /// [`RedisCluster::tls_nodes`] are the seeds to give a client.
    ///
    /// # Errors
    /// When a server does not start or the cluster does not form in time.
    pub async fn start_tls(masters: usize, certs: &TestCerts) -> anyhow::Result<Self> {
        Self::start_with(masters, Some(certs)).await
    }

    async fn start_with(masters: usize, certs: Option<&TestCerts>) -> anyhow::Result<Self> {
        let mut servers = Vec::with_capacity(masters);
        let mut tls_ports = Vec::new();
        for _ in 0..masters {
            let dir = scratch_dir()?;
            let mut extra = cluster_args(&dir, free_port()?);
            if let Some(certs) = certs {
                let port = free_port()?;
                extra.extend(tls_args(certs, port, true));
                tls_ports.push(port);
            }
            servers.push(RedisServer::start_with(extra, dir).await?);
        }
        let cluster = Self { servers, tls_ports };
        // Over TLS, the nodes meet on a bus that speaks TLS: the cluster is created over it.
        let mut create = tokio::process::Command::new("redis-cli");
        let nodes = match certs {
            None => cluster.nodes(),
            Some(certs) => {
                create.arg("--tls").arg("--cacert").arg(&certs.ca);
                cluster
                    .tls_ports
                    .iter()
                    .map(|p| format!("127.0.0.1:{p}"))
                    .collect()
            }
        };
        create
            .args(["--cluster", "create"])
            .args(nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let created = tokio::time::timeout(START_TIMEOUT * 4, create.output())
            .await
            .context("redis-cli --cluster create did not finish in time")?
            .context("running redis-cli --cluster create")?;
        if !created.status.success() {
            let out = String::from_utf8_lossy(&created.stdout);
            bail!("redis-cli --cluster create failed: {out}");
        }
        let deadline = Instant::now() + START_TIMEOUT;
        for server in &cluster.servers {
            while !raw_command(server.port(), &["CLUSTER", "INFO"])
                .await
                .is_ok_and(|info| info.contains("cluster_state:ok"))
            {
                if Instant::now() >= deadline {
                    bail!("the cluster did not reach cluster_state:ok in {START_TIMEOUT:?}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(cluster)
    }

    /// `host:port` of every node.
    #[must_use]
    pub fn nodes(&self) -> Vec<String> {
        self.servers.iter().map(RedisServer::node).collect()
    }

    /// `localhost:port` of every node's TLS port (empty without TLS).
    #[must_use]
    pub fn tls_nodes(&self) -> Vec<String> {
        self.tls_ports
            .iter()
            .map(|p| format!("localhost:{p}"))
            .collect()
    }

    /// Keys held by every node together, asked over their plain ports.
    ///
    /// # Errors
    /// When a node does not answer.
    pub async fn keys(&self) -> anyhow::Result<u64> {
        let mut total = 0;
        for server in &self.servers {
            total += raw_command(server.port(), &["DBSIZE"])
                .await?
                .parse::<u64>()?;
        }
        Ok(total)
    }
}

/// What makes a server speak TLS on `tls_port` (its plain port stays open for the kit's own
/// probes) and on every link it opens itself: replication and, with `cluster`, the cluster
/// bus; it announces itself as `localhost`, the name the test certificate is issued for.
fn tls_args(certs: &TestCerts, tls_port: u16, cluster: bool) -> Vec<String> {
    let mut args = certs.redis_args(tls_port, "no");
    args.extend(["--tls-replication", "yes"].map(str::to_owned));
    if cluster {
        // A node connecting to another's bus is a TLS client, always asked for a certificate
        // (whatever `tls-auth-clients` says): it presents the client one.
        args.extend([
            "--tls-client-cert-file".to_owned(),
            certs.client_cert.display().to_string(),
            "--tls-client-key-file".to_owned(),
            certs.client_key.display().to_string(),
        ]);
        args.extend(
            [
                "--tls-cluster",
                "yes",
                "--cluster-announce-hostname",
                "localhost",
                "--cluster-preferred-endpoint-type",
                "hostname",
            ]
            .map(str::to_owned),
        );
    }
    args
}

fn cluster_args(dir: &Path, bus_port: u16) -> Vec<String> {
    let config_file = dir.join("nodes.conf").display().to_string();
    // The default bus port (port + 10000) may be taken or out of range.
    let bus_port = bus_port.to_string();
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &config_file,
    ]
    .into_iter()
    .chain([
        "--cluster-port",
        &bus_port,
        "--cluster-node-timeout",
        "5000",
    ])
    .map(str::to_owned)
    .collect()
}

/// A primary, one replica and three Sentinels monitoring them as `mymaster` (quorum 2, a
/// primary unreachable for 1 s is down). Killed when dropped.
#[derive(Debug)]
pub struct RedisSentinels {
    /// The primary at start.
    pub primary: RedisServer,
    /// Its replica, promoted when the primary dies.
    pub replica: RedisServer,
    sentinels: Vec<(u16, Child)>,
    /// The Sentinels' TLS ports, when everything speaks TLS.
    tls_ports: Vec<u16>,
    dir: PathBuf,
}

impl RedisSentinels {
    /// Starts the primary, the replica (waiting until it is in sync) and the Sentinels
    /// (waiting until each knows the replica).
    ///
    /// # Errors
    /// When a process does not start or the set does not form in time.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(None).await
    }

    /// As [`RedisSentinels::start`], with TLS everywhere: clients to the servers and the
    /// Sentinels, replication, and the Sentinels' own links; everything announces itself as
    /// `localhost` on its TLS port. [`RedisSentinels::nodes`] are then the Sentinels' TLS
    /// addresses.
    ///
    /// # Errors
    /// When a process does not start or the set does not form in time.
    pub async fn start_tls(certs: &TestCerts) -> anyhow::Result<Self> {
        Self::start_with(Some(certs)).await
    }

    async fn start_with(certs: Option<&TestCerts>) -> anyhow::Result<Self> {
        let (primary, replica, monitored) = match certs {
            None => {
                let primary = RedisServer::start().await?;
                let port = primary.port().to_string();
                let replica =
                    RedisServer::start_with_args(&["--replicaof", "127.0.0.1", &port]).await?;
                (primary, replica, format!("127.0.0.1 {port}"))
            }
            Some(certs) => {
                let (primary_tls, replica_tls) = (free_port()?, free_port()?);
                let primary =
                    RedisServer::start_with(tls_args(certs, primary_tls, false), scratch_dir()?)
                        .await?;
                let mut extra = tls_args(certs, replica_tls, false);
                extra.extend([
                    "--replicaof".to_owned(),
                    "localhost".to_owned(),
                    primary_tls.to_string(),
                    "--replica-announce-ip".to_owned(),
                    "localhost".to_owned(),
                    "--replica-announce-port".to_owned(),
                    replica_tls.to_string(),
                ]);
                let replica = RedisServer::start_with(extra, scratch_dir()?).await?;
                (primary, replica, format!("localhost {primary_tls}"))
            }
        };
        let deadline = Instant::now() + START_TIMEOUT * 2;
        while !raw_command(replica.port(), &["INFO", "replication"])
            .await
            .is_ok_and(|info| info.contains("master_link_status:up"))
        {
            if Instant::now() >= deadline {
                bail!("the replica did not sync with its primary in time");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let dir = scratch_dir()?;
        let mut sentinels = Vec::new();
        let mut tls_ports = Vec::new();
        for i in 0..3 {
            let sentinel_port = free_port()?;
            let conf = dir.join(format!("sentinel-{i}.conf"));
            let tls = match certs {
                None => String::new(),
                Some(certs) => {
                    let tls_port = free_port()?;
                    tls_ports.push(tls_port);
                    format!(
                        "tls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\n\
                         tls-ca-cert-file {}\ntls-auth-clients no\ntls-replication yes\n\
                         sentinel resolve-hostnames yes\nsentinel announce-hostnames yes\n\
                         sentinel announce-ip localhost\nsentinel announce-port {tls_port}\n",
                        certs.server_cert.display(),
                        certs.server_key.display(),
                        certs.ca.display()
                    )
                }
            };
            std::fs::write(
                &conf,
                format!(
                    "port {sentinel_port}\nbind 127.0.0.1\ndir {}\n{tls}\
                     sentinel monitor mymaster {monitored} 2\n\
                     sentinel down-after-milliseconds mymaster 1000\n\
                     sentinel failover-timeout mymaster 5000\n\
                     sentinel parallel-syncs mymaster 1\n",
                    dir.display()
                ),
            )?;
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("running redis-server --sentinel")?;
            sentinels.push((sentinel_port, child));
        }
        let set = Self {
            primary,
            replica,
            sentinels,
            tls_ports,
            dir,
        };
        for (sentinel_port, _) in &set.sentinels {
            while !raw_command(*sentinel_port, &["INFO", "sentinel"])
                .await
                .is_ok_and(|info| info.contains("slaves=1") && info.contains("sentinels=3"))
            {
                if Instant::now() >= deadline {
                    bail!("the Sentinels did not discover the replica and each other in time");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(set)
    }

    /// `host:port` of every Sentinel (its TLS address when the set speaks TLS).
    #[must_use]
    pub fn nodes(&self) -> Vec<String> {
        if !self.tls_ports.is_empty() {
            return self
                .tls_ports
                .iter()
                .map(|port| format!("localhost:{port}"))
                .collect();
        }
        self.sentinels
            .iter()
            .map(|(port, _)| format!("127.0.0.1:{port}"))
            .collect()
    }

    /// Waits until the replica says it is the primary.
    ///
    /// # Errors
    /// When it is not promoted within `limit`.
    pub async fn wait_promoted(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while !raw_command(self.replica.port(), &["INFO", "replication"])
            .await
            .is_ok_and(|info| info.contains("role:master"))
        {
            if Instant::now() >= deadline {
                bail!("the replica was not promoted within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

impl Drop for RedisSentinels {
    fn drop(&mut self) {
        for (_, child) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
