//! The machine's own baselines, run in the same process run as the figures they frame:
//! `pgbench` with the adapter's own transfer statements or with one PL/pgSQL call per
//! transfer (`transfer_fn.sql`), `pgbench -S`, `redis-benchmark -t get`.

use std::time::Duration;

use anyhow::{Context as _, bail};
use sea_orm::ConnectionTrait as _;
use waiaas_postgres::posting::sql;

use crate::env::wallet_sql;
use crate::pgbench;

/// `waiaas_bench_transfer(from, to, amount, owner, agent, key, audit)`: one whole transfer
/// in one call, the best a design posting each transfer in its own transaction can do.
pub const TRANSFER_FN: &str = include_str!("transfer_fn.sql");

/// Creates (or replaces) [`TRANSFER_FN`] in the bench database.
///
/// # Errors
/// When PostgreSQL refuses it.
pub async fn install_transfer_fn(db: &sea_orm::DatabaseConnection) -> anyhow::Result<()> {
    db.execute_unprepared(TRANSFER_FN)
        .await
        .context("creating waiaas_bench_transfer")?;
    Ok(())
}

/// The script's variables: `:a` and `:b` two distinct wallets among `1..=wallets` (with two
/// wallets, the hot pair in a random direction), `:amt` 1–100, `:key` for a fresh
/// idempotency key.
fn script_header(wallets: u64) -> String {
    format!(
        "\\set a random(1, {wallets})\n\\set b (:a + random(1, {}) - 1) % {wallets} + 1\n\\set amt random(1, 100)\n\\set key random(1, 9000000000000000000)\n",
        wallets - 1
    )
}

/// The idempotency key of a pgbench transfer.
const SCRIPT_KEY: &str = "('bench-' || :client_id || '-' || :key)";

/// The pgbench script of one transfer by [`TRANSFER_FN`], with the same variables and
/// values as [`transfer_script`].
#[must_use]
pub fn transfer_fn_script(wallets: u64, owner: &str, agent: &str, audit_json: &str) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    format!(
        "{}SELECT waiaas_bench_transfer({}, {}, :amt, {}::uuid, {}::uuid, {SCRIPT_KEY}, {}::jsonb);\n",
        script_header(wallets),
        wallet_sql("a"),
        wallet_sql("b"),
        q(owner),
        q(agent),
        q(audit_json)
    )
}

/// Transfers per call of `waiaas_bench_transfers`, the batched ceiling.
pub const CEILING_BATCH: u64 = 16;

/// The pgbench script of [`CEILING_BATCH`] transfers in one call of
/// `waiaas_bench_transfers` (in [`TRANSFER_FN`]), among `1..=wallets`: PostgreSQL's own
/// ceiling for a batched design (one round trip and one commit per batch, no client work).
#[must_use]
pub fn transfers_fn_script(wallets: u64, owner: &str, agent: &str, audit_json: &str) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    format!(
        "SELECT waiaas_bench_transfers({CEILING_BATCH}, {wallets}, {}::uuid, {}::uuid, {}::jsonb);\n",
        q(owner),
        q(agent),
        q(audit_json)
    )
}

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
    let key = SCRIPT_KEY.to_owned();
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
    let mut script = script_header(wallets) + "BEGIN;\n";
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

/// Initialises pgbench's own tables in `url` (scale 10) for `pgbench -S`.
///
/// # Errors
/// When pgbench fails.
pub async fn pgbench_init(url: &str) -> anyhow::Result<()> {
    let out = pgbench::command()
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
    let mut cmd = pgbench::command();
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
    pgbench::parse_tps(&pgbench::report(cmd, "pgbench -S").await?)
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
    fn the_hot_pair_script_moves_money_between_wallets_one_and_two() {
        let script = transfer_fn_script(2, "o", "a", "{\"k\": \"it's\"}");
        assert!(script.contains("\\set a random(1, 2)\n\\set b (:a + random(1, 1) - 1) % 2 + 1\n"));
        assert!(script.contains("SELECT waiaas_bench_transfer("));
        assert!(script.contains("'{\"k\": \"it''s\"}'::jsonb"));
        assert!(TRANSFER_FN.contains("FOR NO KEY UPDATE"));
    }
}
