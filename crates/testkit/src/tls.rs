//! Throw-away certificates for TLS tests, made at test time with the `openssl` command: a
//! CA, a server certificate it signs for `localhost` only (so connecting to `127.0.0.1`
//! with host name checks fails), a client certificate it signs (CN `postgres`), and a second,
//! unrelated CA. Keys are P-256 (quick to make).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// The files, in a directory removed on drop.
#[derive(Debug)]
pub struct TestCerts {
    dir: PathBuf,
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server's certificate (`DNS:localhost`), signed by the CA.
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// A client certificate (CN `postgres`), signed by the CA.
    pub client_cert: PathBuf,
    /// The client's key.
    pub client_key: PathBuf,
    /// Another CA, which signed none of them.
    pub other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("running openssl (install the `openssl` package)")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

const KEY: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

fn ca(dir: &Path, name: &str, subject: &str) -> anyhow::Result<()> {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    let mut args = vec!["req", "-x509", "-nodes", "-days", "2"];
    args.extend(KEY);
    args.extend([
        "-keyout",
        &key,
        "-out",
        &crt,
        "-subj",
        subject,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &args)
}

fn leaf(dir: &Path, name: &str, subject: &str, extensions: &str) -> anyhow::Result<()> {
    let (key, csr, crt, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&ext), extensions)?;
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend(KEY);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
    openssl(dir, &args)?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &crt,
            "-extfile",
            &ext,
        ],
    )
}

impl TestCerts {
    /// Makes a new set in a new temporary directory.
    ///
    /// # Errors
    /// When `openssl` is missing or fails.
    pub fn generate() -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("waiaas-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        ca(&dir, "ca", "/CN=waiaas test CA")?;
        ca(&dir, "other-ca", "/CN=someone else's CA")?;
        leaf(
            &dir,
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )?;
        leaf(
            &dir,
            "client",
            "/CN=postgres",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        )?;
        Ok(Self {
            ca: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
            other_ca: dir.join("other-ca.crt"),
            dir,
        })
    }

    /// `-c` options for [`crate::PgServer::start`] that turn TLS on with the server
    /// certificate (its key copied where PostgreSQL accepts it: owned by the user the server
    /// runs as, readable by it alone).
    ///
    /// # Errors
    /// When the key cannot be copied or handed over.
    pub fn postgres_options(&self) -> anyhow::Result<Vec<String>> {
        let key = self.dir.join("server-pg.key");
        std::fs::copy(&self.server_key, &key)?;
        if let Some((uid, gid)) = crate::pg_server::postgres_user()? {
            let status = Command::new("chown")
                .arg(format!("{uid}:{gid}"))
                .arg(&key)
                .status()?;
            anyhow::ensure!(status.success(), "chown of {} failed", key.display());
        }
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        Ok(vec![
            "ssl=on".to_owned(),
            format!("ssl_cert_file={}", self.server_cert.display()),
            format!("ssl_key_file={}", key.display()),
            format!("ssl_ca_file={}", self.ca.display()),
        ])
    }

    /// `redis-server` arguments for a TLS port (the plain port stays, on loopback, for the
    /// test kit's own probes); `clients` is `tls-auth-clients` (`yes`, `no`, `optional`).
    #[must_use]
    pub fn redis_args(&self, tls_port: u16, clients: &str) -> Vec<String> {
        vec![
            "--tls-port".to_owned(),
            tls_port.to_string(),
            "--tls-cert-file".to_owned(),
            self.server_cert.display().to_string(),
            "--tls-key-file".to_owned(),
            self.server_key.display().to_string(),
            "--tls-ca-cert-file".to_owned(),
            self.ca.display().to_string(),
            "--tls-auth-clients".to_owned(),
            clients.to_owned(),
        ]
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
