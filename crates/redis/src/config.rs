//! How to reach Redis, and its translation into fred's client settings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fred::types::config::{
    ClusterDiscoveryPolicy, Config, ConnectionConfig, PerformanceConfig, ReconnectPolicy, Server,
    ServerConfig, TcpConfig, TlsConfig, TlsConnector, TlsHostMapping, UnresponsiveConfig,
};

/// How Redis is deployed.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisMode {
    /// One server, e.g. `redis://127.0.0.1:6379` or `redis://:password@host:6379/0`.
    Standalone {
        /// The server's URL (it may hold a password: never logged).
        url: String,
    },
    /// Redis Cluster.
    Cluster {
        /// `host:port` of seed nodes; the others are discovered.
        nodes: Vec<String>,
    },
    /// A primary found through Redis Sentinel.
    Sentinel {
        /// `host:port` of the sentinels.
        nodes: Vec<String>,
        /// The name the sentinels monitor.
        service_name: String,
    },
}

impl fmt::Debug for RedisMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Standalone { url } => f
                .debug_struct("Standalone")
                .field("url", &redact_url(url))
                .finish(),
            Self::Cluster { nodes } => f.debug_struct("Cluster").field("nodes", nodes).finish(),
            Self::Sentinel {
                nodes,
                service_name,
            } => f
                .debug_struct("Sentinel")
                .field("nodes", nodes)
                .field("service_name", service_name)
                .finish(),
        }
    }
}

/// Everything needed to connect to Redis. Its `Debug` never shows a password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The deployment.
    pub mode: RedisMode,
    /// A password, used instead of any the URL holds (and the only one in cluster and
    /// sentinel modes; the sentinels themselves are reached without one).
    pub password: Option<String>,
    /// Put verbatim in front of every key and channel: empty in production, unique per test.
    pub key_prefix: String,
    /// The longest one command may take before it fails with a timeout.
    pub command_timeout: Duration,
    /// The longest one connection attempt may take.
    pub connect_timeout: Duration,
    /// The longest pause between two reconnection attempts (they back off exponentially).
    pub reconnect_max_delay: Duration,
    /// TLS to every node (and sentinel); a `rediss://` URL asks for it too, then checked
    /// against the system's CAs unless this names others.
    pub tls: Option<RedisTls>,
}

/// TLS to Redis (rustls): the server's certificate must chain to `ca_file` (or the system's
/// CAs) and be issued for the host connected to; a client certificate is sent when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// CA certificates (PEM file); none uses the system's.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM file), for servers with `tls-auth-clients yes`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's key (PEM file).
    pub key_file: Option<PathBuf>,
}

impl RedisTls {
    /// fred's TLS settings: the CAs and the client certificate read from their files.
    ///
    /// # Errors
    /// A file that cannot be read or holds no certificate or key, or a client certificate
    /// without its key.
    pub fn fred(&self) -> anyhow::Result<TlsConfig> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .with_context(|| format!("reading the Redis CA file {}", path.display()))?;
                if certs.is_empty() {
                    bail!("the Redis CA file {} holds no certificate", path.display());
                }
                for c in certs {
                    roots
                        .add(c)
                        .with_context(|| format!("a CA certificate of {}", path.display()))?;
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    // A system certificate rustls cannot use is skipped, as browsers do.
                    let _ = roots.add(c);
                }
            }
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots);
        let config = match (&self.cert_file, &self.key_file) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .with_context(|| {
                        format!("reading the Redis client certificate {}", cert.display())
                    })?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .with_context(|| format!("reading the Redis client key {}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .context("the Redis client certificate and key do not go together")?
            }
            _ => bail!("a Redis client certificate and its key go together: set both or neither"),
        };
        Ok(TlsConfig {
            connector: TlsConnector::from(config),
            hostnames: TlsHostMapping::None,
        })
    }
}

impl RedisConfig {
    /// A standalone server at `url` with the default timeouts (100 ms per command, 1 s to
    /// connect, reconnection attempts at most 2 s apart) and no key prefix.
    #[must_use]
    pub fn standalone(url: impl Into<String>) -> Self {
        Self {
            mode: RedisMode::Standalone { url: url.into() },
            password: None,
            key_prefix: String::new(),
            command_timeout: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(1),
            reconnect_max_delay: Duration::from_secs(2),
            tls: None,
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("mode", &self.mode)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .field("tls", &self.tls)
            .finish()
    }
}

/// A URL with any user information removed, safe to log.
pub(crate) fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://<redacted>@{host}"),
            None => url.to_owned(),
        },
        None => "<unparsable url>".to_owned(),
    }
}

/// Where the configuration points, for logs (never a password).
pub(crate) fn describe(mode: &RedisMode) -> String {
    match mode {
        RedisMode::Standalone { url } => redact_url(url),
        RedisMode::Cluster { nodes } => format!("cluster {}", nodes.join(",")),
        RedisMode::Sentinel {
            nodes,
            service_name,
        } => format!("sentinel {service_name} via {}", nodes.join(",")),
    }
}

/// fred's settings for one client (the main one or the subscriber).
pub(crate) struct FredSettings {
    pub(crate) config: Config,
    pub(crate) performance: PerformanceConfig,
    pub(crate) connection: ConnectionConfig,
    pub(crate) policy: ReconnectPolicy,
}

fn parse_node(node: &str) -> anyhow::Result<Server> {
    let (host, port) = node
        .rsplit_once(':')
        .with_context(|| format!("node `{node}` is not host:port"))?;
    let port = port
        .parse::<u16>()
        .with_context(|| format!("node `{node}` has an invalid port"))?;
    if host.is_empty() {
        bail!("node `{node}` has no host");
    }
    Ok(Server::new(host.trim_matches(['[', ']']), port))
}

fn parse_nodes(nodes: &[String]) -> anyhow::Result<Vec<Server>> {
    if nodes.is_empty() {
        bail!("no Redis nodes configured");
    }
    nodes.iter().map(|n| parse_node(n)).collect()
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Translates the configuration. The choices that make every call fail fast are explained
/// in the crate documentation.
pub(crate) fn fred_settings(cfg: &RedisConfig) -> anyhow::Result<FredSettings> {
    if cfg.command_timeout.is_zero() || cfg.connect_timeout.is_zero() {
        bail!("Redis command and connect timeouts must be positive");
    }
    let mut config = match &cfg.mode {
        // The URL parser's errors never repeat the URL, so they are safe to return.
        RedisMode::Standalone { url } => {
            Config::from_url_centralized(url).context("invalid Redis URL")?
        }
        RedisMode::Cluster { nodes } => Config {
            server: ServerConfig::Clustered {
                hosts: parse_nodes(nodes)?,
                policy: ClusterDiscoveryPolicy::default(),
            },
            ..Config::default()
        },
        RedisMode::Sentinel {
            nodes,
            service_name,
        } => Config {
            server: ServerConfig::Sentinel {
                hosts: parse_nodes(nodes)?,
                service_name: service_name.clone(),
            },
            ..Config::default()
        },
    };
    if cfg.password.is_some() {
        config.password.clone_from(&cfg.password);
    }
    if let Some(tls) = &cfg.tls {
        config.tls = Some(tls.fred()?);
    }
    // Retry the first connection in the background instead of failing: the service starts
    // degraded when Redis is down.
    config.fail_fast = false;

    let performance = PerformanceConfig {
        default_command_timeout: cfg.command_timeout,
        // Subscription streams each hold a receiver of every pub/sub message; a deep buffer
        // keeps a briefly slow consumer from missing invalidations.
        broadcast_channel_capacity: 4096,
        ..PerformanceConfig::default()
    };
    let unresponsive = (cfg.command_timeout * 2).max(Duration::from_secs(1));
    let connection = ConnectionConfig {
        connection_timeout: cfg.connect_timeout,
        internal_command_timeout: cfg.connect_timeout.max(cfg.command_timeout),
        // At most once: a command is never replayed on a new connection after the old one
        // died with it in flight (a replayed lock acquisition would refuse its own owner).
        max_command_attempts: 1,
        unresponsive: UnresponsiveConfig {
            max_timeout: Some(unresponsive),
            interval: (unresponsive / 4).max(Duration::from_millis(50)),
        },
        tcp: TcpConfig {
            nodelay: Some(true),
            ..TcpConfig::default()
        },
        ..ConnectionConfig::default()
    };
    let max_delay = millis(cfg.reconnect_max_delay).max(1);
    let mut policy = ReconnectPolicy::new_exponential(0, 50.min(max_delay), max_delay, 2);
    policy.set_jitter(50);
    Ok(FredSettings {
        config,
        performance,
        connection,
        policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_password_is_never_shown_by_debug() {
        let mut cfg = RedisConfig::standalone("redis://user:hunter2@example.com:6379/0");
        cfg.password = Some("s3cret".to_owned());
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("example.com:6379/0"), "{shown}");
    }

    #[test]
    fn the_configured_password_replaces_the_urls() {
        let mut cfg = RedisConfig::standalone("redis://:old@127.0.0.1:6379");
        cfg.password = Some("new".to_owned());
        let fred = fred_settings(&cfg).unwrap();
        assert_eq!(fred.config.password.as_deref(), Some("new"));
        assert!(!fred.config.fail_fast);
        assert_eq!(fred.connection.max_command_attempts, 1);
    }

    #[test]
    fn cluster_nodes_must_be_host_and_port() {
        let mut cfg = RedisConfig::standalone("");
        cfg.mode = RedisMode::Cluster {
            nodes: vec!["127.0.0.1:7000".to_owned(), "nohost".to_owned()],
        };
        assert!(fred_settings(&cfg).is_err());
        cfg.mode = RedisMode::Cluster {
            nodes: vec!["127.0.0.1:7000".to_owned()],
        };
        assert!(fred_settings(&cfg).unwrap().config.server.is_clustered());
    }
}
