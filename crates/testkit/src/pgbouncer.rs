//! A private PgBouncer of one test: Debian's `pgbouncer` in transaction mode, on a free
//! port, in front of the server of a PostgreSQL URL, with its configuration and log in a
//! scratch directory. Run as the `postgres` user when the test runs as root (PgBouncer
//! refuses to run as root).

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use sea_orm::sqlx::postgres::PgConnectOptions;
use tokio::time::Instant;

use crate::pg_server::{chown, free_port, postgres_user};

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A `pgbouncer` process: killed, and its directory removed, when dropped.
#[derive(Debug)]
pub struct PgBouncer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PgBouncer {
    /// Starts PgBouncer in transaction mode in front of the server `upstream` names (every
    /// database on it, as the user of the URL, without a password: the server trusts its
    /// clients), with at most `server_connections` server connections per database, so that
    /// clients share them. Its configuration is PgBouncer's defaults otherwise (no startup
    /// parameter is ignored), but for `server_login_retry = 1`: after a failed login to a
    /// restarting server, PgBouncer tries again after 1 s rather than its default 15.
    ///
    /// # Errors
    /// When `pgbouncer` is not installed or does not accept connections in time.
    pub async fn start(upstream: &str, server_connections: u32) -> anyhow::Result<Self> {
        let up: PgConnectOptions = upstream
            .parse()
            .with_context(|| format!("parsing {}", waiaas_postgres::redact_url(upstream)))?;
        let user = postgres_user()?;
        let dir = std::env::temp_dir().join(format!(
            "waiaas-pgbouncer-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(
            dir.join("users.txt"),
            format!("\"{}\" \"\"\n", up.get_username()),
        )?;
        let mut bouncer = Self {
            port: 0,
            dir,
            child: None,
        };
        chown(&bouncer.dir, user)?;
        let mut tries = 0;
        loop {
            bouncer.port = free_port()?;
            let config = format!(
                "[databases]\n* = host={host} port={port}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {listen}\nunix_socket_dir =\nauth_type = trust\n\
                 auth_file = {dir}/users.txt\npool_mode = transaction\n\
                 default_pool_size = {server_connections}\nmax_client_conn = 1000\n\
                 server_login_retry = 1\n\
                 logfile = {dir}/pgbouncer.log\npidfile = {dir}/pgbouncer.pid\n",
                host = up.get_host(),
                port = up.get_port(),
                listen = bouncer.port,
                dir = bouncer.dir.display(),
            );
            let ini = bouncer.dir.join("pgbouncer.ini");
            std::fs::write(&ini, config)?;
            chown(&ini, user)?;
            // Debian installs it in /usr/sbin, which a user's PATH may lack.
            let bin = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
                .into_iter()
                .find(|p| std::path::Path::new(p).exists())
                .unwrap_or("pgbouncer");
            let mut cmd = Command::new(bin);
            cmd.arg(&ini).stdout(Stdio::null()).stderr(Stdio::null());
            if let Some((uid, gid)) = user {
                cmd.uid(uid).gid(gid);
            }
            bouncer.child = Some(
                cmd.spawn()
                    .context("running pgbouncer (apt-get install pgbouncer)")?,
            );
            match bouncer.wait_ready().await {
                Ok(()) => return Ok(bouncer),
                Err(e) => {
                    bouncer.kill();
                    tries += 1;
                    if tries == 3 {
                        return Err(e.context(bouncer.log()));
                    }
                }
            }
        }
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("pgbouncer on port {} exited at start: {status}", self.port);
            }
            if Instant::now() >= deadline {
                bail!(
                    "pgbouncer on port {} did not listen within {START_TIMEOUT:?}",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `url` with its host and port replaced by this PgBouncer's (same user and database).
    ///
    /// # Panics
    /// When `url` is not a `postgres://` URL with a host.
    #[must_use]
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let user = authority
            .rsplit_once('@')
            .map_or(String::new(), |(u, _)| format!("{u}@"));
        format!("{scheme}://{user}127.0.0.1:{}{path}", self.port)
    }

    /// Its log, for failure messages.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
