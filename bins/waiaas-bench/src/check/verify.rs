//! After the run: every request resolved, every acknowledged write found in PostgreSQL as it
//! was acknowledged, every refused one without effect, money conserved, the ledger
//! reconciled.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait as _, DbBackend, Statement};

use super::ops::{Kind, Op, Outcome, Rng, Run};

/// Requests that never got an answer during the run are sent once more, with the same key,
/// now that nothing is failing: each must resolve (a replay when it had taken effect).
pub(super) async fn resolve_leftovers(run: &Run) -> usize {
    let leftovers: Vec<Op> = {
        let mut ledger = run
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (unresolved, resolved): (Vec<Op>, Vec<Op>) = ledger
            .drain(..)
            .partition(|op| matches!(op.outcome, Outcome::Unresolved));
        *ledger = resolved;
        unresolved
    };
    let n = leftovers.len();
    let mut rng = Rng::new(99);
    for op in leftovers {
        run.post(&mut rng, op, 1).await;
    }
    n
}

/// Checks the ledger of requests against PostgreSQL; returns the violations found and the
/// net money the acknowledged requests brought in (deposits minus payments).
pub(super) async fn against_postgres(run: &Run) -> anyhow::Result<(Vec<String>, i64)> {
    let ops = run
        .ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let keys: Vec<sea_orm::Value> = ops.iter().map(|o| o.key.clone().into()).collect();
    let rows = run
        .env
        .admin
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT idempotency_key, id, status FROM transactions WHERE idempotency_key = ANY($1)",
            [sea_orm::Value::Array(
                sea_orm::sea_query::ArrayType::String,
                Some(Box::new(keys)),
            )],
        ))
        .await?;
    let mut stored: HashMap<String, (uuid::Uuid, String)> = HashMap::new();
    for r in rows {
        let key: String = r.try_get("", "idempotency_key")?;
        stored.insert(key, (r.try_get("", "id")?, r.try_get("", "status")?));
    }
    let mut violations = Vec::new();
    let mut net = 0_i64;
    for op in &ops {
        match &op.outcome {
            Outcome::Acked { id, status } => match stored.get(&op.key) {
                Some((sid, sstatus)) if sid == id.as_uuid() && same_or_later(*status, sstatus) => {
                    if *status == waiaas_domain::TransactionStatus::Completed {
                        match op.kind {
                            Kind::Deposit => net += op.amount,
                            Kind::Payment | Kind::Capture => net -= op.amount,
                            Kind::Transfer | Kind::Hold => {}
                        }
                    }
                }
                other => violations.push(format!(
                    "acknowledged {:?} {} ({}) as {id} {status:?}, PostgreSQL holds {other:?}",
                    op.kind,
                    op.key,
                    op_targets(op)
                )),
            },
            Outcome::Refused(why) => {
                if let Some(s) = stored.get(&op.key) {
                    violations.push(format!(
                        "refused {:?} {} ({}, {why}) took effect: {s:?}",
                        op.kind,
                        op.key,
                        op_targets(op)
                    ));
                }
            }
            Outcome::Unresolved => violations.push(format!(
                "{:?} {} never got an answer, even after the faults",
                op.kind, op.key
            )),
        }
    }
    Ok((violations, net))
}

/// Whether `stored` is what an acknowledged `status` is or may have become since: a hold
/// acknowledged as held may since have been captured, voided or expired; nothing else
/// changes once answered.
fn same_or_later(status: waiaas_domain::TransactionStatus, stored: &str) -> bool {
    use waiaas_domain::TransactionStatus as S;
    stored == status.as_str()
        || status == S::Held
            && [S::Captured, S::Voided, S::Expired]
                .iter()
                .any(|s| s.as_str() == stored)
}

/// Holds ended more than once (an audit row per end: capture, void, expiry), holds the
/// sweepers left open well past their expiry, and mandates whose count of uses disagrees
/// with the transactions that used them.
pub(super) async fn holds(run: &Run) -> anyhow::Result<Vec<String>> {
    let rows = run
        .env
        .admin
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT resource_id || ' ended ' || count(*) || ' times' AS v FROM audit_logs \
             WHERE action IN ('hold.capture', 'hold.void', 'hold.expire') \
             GROUP BY resource_id HAVING count(*) > 1 \
             UNION ALL SELECT id::text || ' still held ' || (now() - expires_at)::text || ' after its expiry' \
             FROM transactions WHERE status = 'held' AND expires_at < now() - interval '10 seconds' \
             UNION ALL SELECT 'mandate ' || m.id::text || ' counts ' || (m.max_uses - m.uses_left) || ' uses, the ledger ' || count(t.id) \
             FROM mandates m LEFT JOIN transactions t ON t.mandate_id = m.id AND t.status NOT IN ('denied', 'failed') \
             GROUP BY m.id HAVING m.max_uses - m.uses_left <> count(t.id)",
        ))
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String>("", "v")?))
        .collect()
}

/// The wallets a request touched (for messages).
fn op_targets(op: &Op) -> String {
    match (&op.to, &op.destination) {
        (Some(to), _) => format!("{} -> {to}", op.wallet),
        (None, Some(d)) => format!("{} -> {d}", op.wallet),
        (None, None) => format!("-> {}", op.wallet),
    }
}

/// Reads every wallet's balance through both instances once more, recorded like any read.
pub(super) async fn read_everything(run: &Run) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, label) in [(0, "instance-a"), (1, "instance-b")] {
        let app = run.env.instance(i);
        for w in run.env.wallets.clone() {
            for what in [0, 3, 4, 5] {
                run.read_one(&app, what, w, label).await;
            }
            if Instant::now() > deadline {
                return;
            }
        }
    }
}
