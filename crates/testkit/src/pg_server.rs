//! A private PostgreSQL server of one test (or of the consistency checker): `initdb` into a
//! scratch directory and `postgres` on a free port, so tests can stop, crash and restart it
//! without touching the shared server. Run as the `postgres` user when the test runs as
//! root (PostgreSQL refuses to run as root).

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use sea_orm::{ConnectionTrait, Database};
use tokio::time::Instant;

/// How long a server gets to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `postgres` process with its own data directory. Killed, and its directory removed, when
/// dropped.
#[derive(Debug)]
pub struct PgServer {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    settings: Vec<String>,
    child: Option<Child>,
}

/// The directory of PostgreSQL's server binaries: `WAIAAS_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout), else whatever `initdb` is on the
/// `PATH`.
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("WAIAAS_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map_or_else(|| PathBuf::from(""), |(_, bin)| bin)
}

/// The uid and gid of the `postgres` user, when this process runs as root.
pub(crate) fn postgres_user() -> anyhow::Result<Option<(u32, u32)>> {
    let me = Command::new("id")
        .arg("-u")
        .output()
        .context("running id")?;
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return Ok(None);
    }
    let id = |flag: &str| -> anyhow::Result<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output()?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("running as root, and there is no `postgres` user to run PostgreSQL as")
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

/// A new scratch directory for a server, owned by the user it runs as.
fn server_dir(user: Option<(u32, u32)>) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("waiaas-pg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    chown(&dir, user)?;
    Ok(dir)
}

/// Hands `dir` to the user the server runs as (nothing to do when not root).
pub(crate) fn chown(dir: &Path, user: Option<(u32, u32)>) -> anyhow::Result<()> {
    if let Some((uid, gid)) = user {
        let status = Command::new("chown")
            .arg(format!("{uid}:{gid}"))
            .arg(dir)
            .status()?;
        anyhow::ensure!(status.success(), "chown of {} failed", dir.display());
    }
    Ok(())
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

impl PgServer {
    /// Creates a cluster and starts it on a free port, with `settings` as extra
    /// `-c name=value` options (for example `max_connections=8`).
    ///
    /// # Errors
    /// When the binaries are missing or the server does not start in time.
    pub async fn start(settings: &[&str]) -> anyhow::Result<Self> {
        let bin = bin_dir();
        let user = postgres_user()?;
        let dir = server_dir(user)?;
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = user {
            initdb.uid(uid).gid(gid);
        }
        let out = initdb
            .output()
            .context("running initdb (is PostgreSQL's server package installed?)")?;
        if !out.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut server = Self {
            port: free_port()?,
            dir,
            bin,
            user,
            settings: settings.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
        };
        server.spawn().await?;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "shared_buffers=16MB", "-c", "max_connections=60"]);
        for s in &self.settings {
            cmd.args(["-c", s]);
        }
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("log"))?);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        // A server killed a moment ago may still hold its shared memory: try a few times.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.child = Some(cmd.spawn().context("running postgres")?);
            match self.wait_ready(deadline).await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline && self.exited() => {
                    tracing::debug!(error = %e, "Private PostgreSQL did not start; again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn exited(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(_))) => {
                self.child = None;
                true
            }
            _ => false,
        }
    }

    async fn wait_ready(&mut self, deadline: Instant) -> anyhow::Result<()> {
        loop {
            if let Ok(db) = Database::connect(self.url("postgres")).await {
                let ok = db.execute_unprepared("SELECT 1").await.is_ok();
                let _ = db.close().await;
                if ok {
                    return Ok(());
                }
            }
            if self.exited() {
                bail!(
                    "postgres on port {} exited at start: {}",
                    self.port,
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "postgres on port {} did not answer within {START_TIMEOUT:?}",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// The URL of database `db` on this server.
    #[must_use]
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The port it listens on.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    #[must_use]
    pub fn data_dir(&self) -> PathBuf {
        self.data()
    }

    /// The scratch directory holding the data directory and the log.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Crashes it: SIGKILL to the postmaster (its backends notice and exit), as a power cut
    /// or an OOM kill would. Committed work survives (crash recovery), connections break.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it the way an operator restarting it does (fast shutdown: connections are
    /// terminated, nothing committed is lost) and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + START_TIMEOUT;
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Starts it again, on the same port and data.
    ///
    /// # Errors
    /// When it does not answer in time.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            self.stop().await;
        }
        self.spawn().await
    }

    /// A new scratch directory the server's user may write (a WAL archive, a base backup).
    ///
    /// # Errors
    /// When it cannot be created or handed over.
    pub fn scratch_dir_for_server(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir)?;
        chown(&dir, self.user)?;
        Ok(dir)
    }

    /// A streaming replica of this server: a base backup (`pg_basebackup -R`, so it follows
    /// this server over streaming replication) started as a hot standby on a free port, with
    /// the same extra settings. Stop or kill it like any server; `pg_wal_replay_pause()` on
    /// it holds it behind.
    ///
    /// # Errors
    /// When the backup fails or the standby does not start.
    pub async fn start_replica(&self) -> anyhow::Result<Self> {
        let dir = server_dir(self.user)?;
        let mut backup = Command::new(self.bin.join("pg_basebackup"));
        backup
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-R", "-X", "stream", "--no-sync", "-c", "fast"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = self.user {
            backup.uid(uid).gid(gid);
        }
        let out = backup.output().context("running pg_basebackup")?;
        if !out.status.success() {
            bail!(
                "pg_basebackup failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut replica = Self {
            port: free_port()?,
            dir,
            bin: self.bin.clone(),
            user: self.user,
            settings: self.settings.clone(),
            child: None,
        };
        replica.spawn().await?;
        Ok(replica)
    }

    /// Creates a database on it and migrates it; returns its URL.
    ///
    /// # Errors
    /// When the server cannot be reached or a migration fails.
    pub async fn migrated_database(&self, name: &str) -> anyhow::Result<String> {
        use waiaas_migration::MigratorTrait as _;
        let admin = Database::connect(self.url("postgres")).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        admin.close().await?;
        let url = self.url(name);
        let db = Database::connect(url.as_str()).await?;
        waiaas_migration::Migrator::up(&db, None).await?;
        db.close().await?;
        Ok(url)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
