//! The machine's own baselines, run in the same process run as the figures they frame:
//! `pgbench` with the adapter's own transfer statements, `pgbench -S`, `redis-benchmark -t get`.

use std::time::Duration;

use anyhow::{Context as _, bail};
use waiaas_postgres::posting::sql;

use crate::env::wallet_sql;

/// The pgbench script of one wallet-to-wallet transfer: exactly the statements the adapter
/// issues (`sql::TRANSFER_STATEMENTS`, in order, between `BEGIN` and `COMMIT`), each `$n`
/// replaced by a pgbench expression producing the value the adapter would bind.
#[must_use]
pub fn transfer_script(wallets: u64, owner: &str, agent: &str, audit_json: &str) -> String {
    let a = wallet_sql("a");
    let b = wallet_sql("b");
    let day = "(now() AT TIME ZONE 'UTC')::date".to_owned();
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let month = "date_trunc('month', now() AT TIME ZONE 'UTC')::date".to_owned();
    let key = "('bench-' || :client_id || '-' || :key)".to_owned();
    let params: [Vec<String>; 5] = [
        // LOCK_WALLETS (with the idempotency key looked up: a fresh one, never found). The key
        // is a constant of the transaction, as the adapter binds it: a volatile expression
        // (`gen_random_uuid()`) would be a filter over every row of the initiator, not an
        // index condition, and make the baseline slow down with its own history.
        vec![
            format!("ARRAY[{a}, {b}]"),
            format!("{}::uuid", q(agent)),
            key.clone(),
            "now()".into(),
        ],
        // LOCK_BUDGETS (no budget is set: no row)
        vec![
            format!("{}::uuid", q(agent)),
            format!("{}::uuid", q(owner)),
            "'USD'".into(),
        ],
        // POLICY_AND_SPEND
        vec![
            a.clone(),
            day.clone(),
            month,
            "NULL".into(),
            "NULL".into(),
            "'USD'".into(),
        ],
        // INSERT_TRANSACTION
        vec![
            "gen_random_uuid()".into(),
            "'transfer'".into(),
            "'completed'".into(),
            "'USD'".into(),
            ":amt".into(),
            a.clone(),
            b.clone(),
            "NULL".into(),
            "NULL".into(),
            "'{}'::jsonb".into(),
            q(owner),
            "'agent'".into(),
            format!("{}::uuid", q(agent)),
            key,
            q(&"0".repeat(64)),
            "NULL".into(),
            "NULL".into(),
            "NULL".into(),
            "NULL".into(),
            "now()".into(),
            "now()".into(),
            "now()".into(),
            "NULL".into(),
            "NULL".into(),
            "NULL".into(),
            "'{}'::jsonb".into(),
            "NULL".into(),
            "NULL".into(),
            "NULL".into(),
        ],
        // POST_WRITES
        vec![
            ":tx_id::uuid".into(),
            "'USD'".into(),
            "now()".into(),
            format!("ARRAY[{a}::text, {b}::text]"),
            format!("ARRAY['wallet:' || {a}, 'wallet:' || {b}]"),
            "ARRAY[-(:amt::bigint), :amt::bigint]".into(),
            format!("ARRAY[{a}, {b}]"),
            "ARRAY[-(:amt::bigint), :amt::bigint]".into(),
            a.clone(),
            day,
            ":amt".into(),
            "gen_random_uuid()".into(),
            format!("{}::uuid", q(owner)),
            "'agent'".into(),
            format!("{}::uuid", q(agent)),
            "'transaction.create'".into(),
            "'transaction'".into(),
            ":tx_id::text".into(),
            "NULL".into(),
            format!("{}::jsonb", q(audit_json)),
            "NULL".into(),
            "NULL".into(),
        ],
    ];
    let mut script = format!(
        "\\set a random(1, {wallets})\n\\set b (:a + random(1, {}) - 1) % {wallets} + 1\n\\set amt random(1, 100)\n\\set key random(1, 9000000000000000000)\nBEGIN;\n",
        wallets - 1
    );
    for (i, (stmt, values)) in sql::TRANSFER_STATEMENTS
        .iter()
        .zip(params.iter())
        .enumerate()
    {
        let mut text = (*stmt).to_owned();
        // Highest index first, so `$1` never eats the start of `$12`.
        for (n, v) in values.iter().enumerate().rev() {
            text = text.replace(&format!("${}", n + 1), v);
        }
        // INSERT_TRANSACTION returns the row: its id is `:tx_id` in POST_WRITES.
        let insert = sql::TRANSFER_STATEMENTS
            .iter()
            .position(|s| *s == sql::INSERT_TRANSACTION)
            .unwrap_or(usize::MAX);
        let end = if i == insert { " \\gset tx_\n" } else { ";\n" };
        script.push_str(&text);
        script.push_str(end);
    }
    script.push_str("COMMIT;\n");
    script
}

/// Parses `tps = 1234.5 (without initial connection time)`.
fn parse_tps(out: &str) -> anyhow::Result<f64> {
    out.lines()
        .filter(|l| l.starts_with("tps = "))
        .find_map(|l| {
            l.trim_start_matches("tps = ")
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .with_context(|| format!("no tps in pgbench output:\n{out}"))
}

/// A `pgbench` command on the service's transport: plain TCP. libpq would otherwise negotiate
/// TLS with a server that offers it (`sslmode=prefer`), while the service's pool connects
/// without TLS, and the baseline would pay for encryption the service does not.
fn pgbench() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("pgbench");
    cmd.env("PGSSLMODE", "disable");
    cmd
}

/// Runs a prepared `pgbench` command and reads its throughput.
async fn pgbench_tps(mut cmd: tokio::process::Command, what: &str) -> anyhow::Result<f64> {
    let out = cmd
        .output()
        .await
        .with_context(|| format!("running {what} (is pgbench installed?)"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{what} failed:\n{text}");
    }
    parse_tps(&text)
}

/// Runs pgbench with a script at `clients` for `duration` and returns transactions/s.
///
/// # Errors
/// When pgbench fails or prints no throughput.
pub async fn pgbench_script(
    url: &str,
    script: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let path = std::env::temp_dir().join(format!(
        "waiaas-bench-{}.sql",
        uuid::Uuid::new_v4().simple()
    ));
    tokio::fs::write(&path, script).await?;
    let mut cmd = pgbench();
    cmd.args([
        "-n",
        "-M",
        "prepared",
        "-c",
        &clients.to_string(),
        "-j",
        &clients.min(4).to_string(),
    ])
    .args(["-T", &duration.as_secs().max(1).to_string(), "-f"])
    .arg(&path)
    .arg(url);
    let tps = pgbench_tps(cmd, "pgbench").await;
    if std::env::var_os("WAIAAS_BENCH_KEEP_SCRIPT").is_none() {
        let _ = tokio::fs::remove_file(&path).await;
    }
    tps
}

/// Initialises pgbench's own tables in `url` (scale 10) for `pgbench -S`.
///
/// # Errors
/// When pgbench fails.
pub async fn pgbench_init(url: &str) -> anyhow::Result<()> {
    let out = pgbench()
        .args(["-i", "-q", "-s", "10"])
        .arg(url)
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `pgbench -S` (one primary-key SELECT per transaction) at `clients`.
///
/// # Errors
/// When pgbench fails.
pub async fn pgbench_select(url: &str, clients: usize, duration: Duration) -> anyhow::Result<f64> {
    let mut cmd = pgbench();
    cmd.args([
        "-n",
        "-S",
        "-M",
        "prepared",
        "-c",
        &clients.to_string(),
        "-j",
        &clients.min(4).to_string(),
    ])
    .args(["-T", &duration.as_secs().max(1).to_string()])
    .arg(url);
    pgbench_tps(cmd, "pgbench -S").await
}

/// `redis-benchmark -t get` at `clients` with `requests` requests: GETs per second.
///
/// # Errors
/// When redis-benchmark fails or prints no figure.
pub async fn redis_get(url: &str, clients: usize, requests: u64) -> anyhow::Result<f64> {
    let out = tokio::process::Command::new("redis-benchmark")
        .args([
            "-u",
            url,
            "-t",
            "get",
            "-q",
            "-c",
            &clients.to_string(),
            "-n",
            &requests.to_string(),
        ])
        .output()
        .await
        .context("running redis-benchmark (is it installed?)")?;
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    text.lines()
        .filter(|l| l.starts_with("GET:"))
        .find_map(|l| {
            l.trim_start_matches("GET:")
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .with_context(|| format!("no GET figure in redis-benchmark output:\n{text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pgbench_script_runs_the_adapters_statements_in_order() {
        let script = transfer_script(1000, "o", "a", "{}");
        let mut at = 0;
        for stmt in sql::TRANSFER_STATEMENTS {
            // Every statement appears, in order, with only its parameters replaced.
            let head = stmt.split('$').next().unwrap_or(stmt);
            let found = script[at..]
                .find(head)
                .unwrap_or_else(|| panic!("missing: {head}"));
            at += found + head.len();
        }
        assert!(!script.contains('$'), "every parameter is bound");
        assert!(script.starts_with("\\set a") && script.trim_end().ends_with("COMMIT;"));
    }

    #[test]
    fn pgbench_throughput_is_read_from_its_report() {
        let out = "latency average = 1.2 ms\ntps = 812.345678 (without initial connection time)\n";
        assert!((parse_tps(out).unwrap() - 812.345_678).abs() < 1e-6);
        assert!(parse_tps("nothing").is_err());
    }
}
