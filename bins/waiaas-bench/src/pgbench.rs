//! Running `pgbench` and reading what it measured: throughput and average latency from its
//! report, p50 and p99 from its per-transaction log.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// What one pgbench run measured.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct PgbenchStats {
    /// Transactions per second (without the initial connection time).
    pub tps: f64,
    /// `latency average` of its report, milliseconds.
    pub avg_ms: f64,
    /// Median latency from its transaction log, milliseconds (none when the log was empty).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency from its transaction log, milliseconds.
    pub p99_ms: Option<f64>,
}

/// A `pgbench` command on the service's transport: plain TCP. libpq would otherwise negotiate
/// TLS with a server that offers it (`sslmode=prefer`), while the service's pool connects
/// without TLS, and the baseline would pay for encryption the service does not.
pub(crate) fn command() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("pgbench");
    cmd.env("PGSSLMODE", "disable");
    cmd
}

/// Reads the number after `prefix` on the first line that starts with it.
fn figure(out: &str, prefix: &str) -> Option<f64> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix(prefix))
        .find_map(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Parses `tps = 1234.5 (without initial connection time)`.
pub(crate) fn parse_tps(out: &str) -> anyhow::Result<f64> {
    figure(out, "tps = ").with_context(|| format!("no tps in pgbench output:\n{out}"))
}

/// Runs a prepared `pgbench` command and returns its report (stdout and stderr).
pub(crate) async fn report(mut cmd: tokio::process::Command, what: &str) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .await
        .with_context(|| format!("running {what} (is pgbench installed?)"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{what} failed:\n{text}");
    }
    Ok(text)
}

/// The latencies (µs) of a pgbench transaction log: `client transaction time script epoch µs`
/// per line; failed or skipped transactions have no number in the time field.
fn log_latencies(text: &str, into: &mut Vec<u64>) {
    into.extend(
        text.lines()
            .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()),
    );
}

/// The `q` quantile (0..=1) of sorted latencies in µs, in milliseconds.
fn quantile_ms(sorted: &[u64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    Some(sorted[rank - 1] as f64 / 1000.0)
}

/// Reads every log file pgbench wrote in `dir` (one per thread).
async fn read_logs(dir: &Path) -> anyhow::Result<Vec<u64>> {
    let mut latencies = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let text = tokio::fs::read_to_string(entry.path()).await?;
        log_latencies(&text, &mut latencies);
    }
    latencies.sort_unstable();
    Ok(latencies)
}

/// Runs pgbench with `script` at `clients` for `duration`, logging every transaction's
/// latency into a temporary directory (removed afterwards).
///
/// # Errors
/// When pgbench fails or prints no throughput.
pub async fn run_script(
    url: &str,
    script: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<PgbenchStats> {
    let dir = std::env::temp_dir().join(format!("waiaas-bench-{}", uuid::Uuid::new_v4().simple()));
    tokio::fs::create_dir_all(&dir).await?;
    let result = async {
        let path = dir.join("script.sql");
        tokio::fs::write(&path, script).await?;
        let logs = dir.join("log");
        tokio::fs::create_dir_all(&logs).await?;
        let mut cmd = command();
        cmd.current_dir(&logs)
            .args([
                "-n",
                "-M",
                "prepared",
                "-c",
                &clients.to_string(),
                "-j",
                &clients.min(4).to_string(),
            ])
            .args(["-T", &duration.as_secs().max(1).to_string(), "-l"])
            .arg(format!("--log-prefix={}", logs.join("tx").display()))
            .arg("-f")
            .arg(&path)
            .arg(url);
        let text = report(cmd, "pgbench").await?;
        let latencies = read_logs(&logs).await?;
        Ok::<_, anyhow::Error>(PgbenchStats {
            tps: parse_tps(&text)?,
            avg_ms: figure(&text, "latency average = ").unwrap_or(0.0),
            p50_ms: quantile_ms(&latencies, 0.5),
            p99_ms: quantile_ms(&latencies, 0.99),
        })
    }
    .await;
    if std::env::var_os("WAIAAS_BENCH_KEEP_SCRIPT").is_none() {
        let _ = tokio::fs::remove_dir_all(&dir).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_throughput_and_latency_are_read_from_its_report() {
        let out = "latency average = 1.2 ms\ntps = 812.345678 (without initial connection time)\n";
        assert!((parse_tps(out).unwrap() - 812.345_678).abs() < 1e-6);
        assert!((figure(out, "latency average = ").unwrap() - 1.2).abs() < 1e-9);
        assert!(parse_tps("nothing").is_err());
    }

    #[test]
    fn percentiles_come_from_the_transaction_log_without_its_failures() {
        let mut latencies = Vec::new();
        let log: String = (1..=100)
            .map(|i| format!("0 {i} {} 0 1700000000 123456\n", i * 1000))
            .collect::<String>()
            + "1 7 failed 0 1700000000 123456\n";
        log_latencies(&log, &mut latencies);
        latencies.sort_unstable();
        assert_eq!(latencies.len(), 100);
        assert_eq!(quantile_ms(&latencies, 0.5), Some(50.0));
        assert_eq!(quantile_ms(&latencies, 0.99), Some(99.0));
        assert_eq!(quantile_ms(&[], 0.99), None);
    }
}
