//! Budgets of agents and owners, per asset: read, and replaced under the locks of every
//! wallet below them.

use crate::pool::Begin as _;
use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;
use waiaas_domain::policy::{BudgetLimits, BudgetOwner, Budgets, LevelUsage};
use waiaas_domain::{AssetCode, AuditContext, Money, NewAuditEntry, OwnerId, RepoError};

use crate::audit;
use crate::error::{RepoContext as _, commit};

/// The table and key column of a level's budgets.
const fn table(of: BudgetOwner) -> (&'static str, &'static str, Uuid) {
    match of {
        BudgetOwner::Agent(a) => ("agent_budgets", "agent_id", *a.as_uuid()),
        BudgetOwner::Owner(o) => ("owner_budgets", "owner_id", *o.as_uuid()),
    }
}

fn limit(row: &sea_orm::QueryResult, column: &str) -> Result<Option<Money>, RepoError> {
    row.try_get::<Option<i64>>("", column)
        .repo("decoding a budget")?
        .map(|v| crate::convert::money(v, "budget limit").map_err(RepoError))
        .transpose()
}

/// Decodes budget rows (`asset`, `max_per_transaction`, `daily_limit`, `monthly_limit`).
pub(crate) fn decode(rows: &[sea_orm::QueryResult]) -> Result<Budgets, RepoError> {
    rows.iter()
        .map(|r| {
            let asset: String = r.try_get("", "asset").repo("decoding a budget")?;
            Ok((
                AssetCode::parse(&asset).map_err(|e| RepoError(e.into()))?,
                BudgetLimits {
                    max_per_transaction: limit(r, "max_per_transaction")?,
                    daily_limit: limit(r, "daily_limit")?,
                    monthly_limit: limit(r, "monthly_limit")?,
                },
            ))
        })
        .collect()
}

pub(crate) async fn read<C: ConnectionTrait>(
    db: &C,
    of: BudgetOwner,
) -> Result<Budgets, RepoError> {
    let (table, key, id) = table(of);
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT asset, max_per_transaction, daily_limit, monthly_limit FROM {table} \
                 WHERE {key} = $1 ORDER BY asset"
            ),
            [id.into()],
        ))
        .await
        .repo("reading a budget")?;
    decode(&rows)
}

pub(crate) async fn put(
    db: &DatabaseConnection,
    of: BudgetOwner,
    owner: OwnerId,
    budgets: &Budgets,
    ctx: &AuditContext,
) -> Result<Budgets, RepoError> {
    let (table, key, id) = table(of);
    let now = Utc::now();
    let txn = db.start().await.repo("beginning a budget change")?;
    // Every wallet below the level, in the order postings lock them: a spend already under
    // way commits (and is counted) first, and every later spend finds the new budget.
    let wallets = match of {
        BudgetOwner::Agent(_) => "agent_id",
        BudgetOwner::Owner(_) => "owner_id",
    };
    txn.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("SELECT id FROM wallets WHERE {wallets} = $1 ORDER BY id FOR NO KEY UPDATE"),
        [id.into()],
    ))
    .await
    .repo("locking the wallets below the budget")?;
    let old = read(&txn, of).await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("DELETE FROM {table} WHERE {key} = $1"),
        [id.into()],
    ))
    .await
    .repo("replacing a budget")?;
    for (asset, limits) in budgets.iter().filter(|(_, l)| !l.is_empty()) {
        let minor = |m: Option<Money>| m.map(Money::minor_units);
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO {table} ({key}, asset, max_per_transaction, daily_limit, monthly_limit, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)"
            ),
            [
                id.into(),
                asset.as_str().into(),
                minor(limits.max_per_transaction).into(),
                minor(limits.daily_limit).into(),
                minor(limits.monthly_limit).into(),
                now.into(),
            ],
        ))
        .await
        .repo("writing a budget")?;
    }
    let new = read(&txn, of).await?;
    let resource_type = match of {
        BudgetOwner::Agent(_) => "agent",
        BudgetOwner::Owner(_) => "owner",
    };
    audit::record(
        &txn,
        ctx,
        NewAuditEntry {
            owner_id: Some(owner),
            action: "budget.set",
            resource_type,
            resource_id: id.to_string(),
            old_value: Some(serde_json::to_value(&old).map_err(|e| RepoError(e.into()))?),
            new_value: Some(serde_json::to_value(&new).map_err(|e| RepoError(e.into()))?),
        },
        now,
    )
    .await
    .repo("auditing the budget change")?;
    // Its event, in the same commit: one per change of the whole budget.
    let agent = match of {
        BudgetOwner::Agent(a) => Some(a.to_string()),
        BudgetOwner::Owner(_) => None,
    };
    let payload = serde_json::json!({
        "level": resource_type,
        "owner_id": owner,
        "agent_id": agent,
        "limits": new,
        "updated_at": now,
    });
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT insert_event('budget.updated', 'budget', $1, NULL, $2, $3)",
        [(*owner.as_uuid()).into(), payload.into(), now.into()],
    ))
    .await
    .repo("recording the budget's event")?;
    commit(txn, "committing the budget change")
        .await
        .map_err(RepoError)?;
    Ok(new)
}

/// What every wallet below a level spent in an asset today and this month.
pub(crate) async fn spend(
    db: &DatabaseConnection,
    of: BudgetOwner,
    asset: &AssetCode,
    today: chrono::NaiveDate,
) -> Result<LevelUsage, RepoError> {
    use chrono::Datelike as _;
    let (_, key, id) = table(of);
    let month = today.with_day(1).unwrap_or(today);
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT LEAST(COALESCE(sum(s.amount) FILTER (WHERE s.day = $3), 0), 9223372036854775807)::bigint AS today, \
                 LEAST(COALESCE(sum(s.amount), 0), 9223372036854775807)::bigint AS month \
                 FROM wallet_daily_spend s JOIN wallets w ON w.id = s.wallet_id \
                 WHERE w.{key} = $1 AND w.asset = $2 AND s.day BETWEEN $4 AND $3"
            ),
            [
                id.into(),
                asset.as_str().into(),
                today.into(),
                month.into(),
            ],
        ))
        .await
        .repo("reading a budget's spend")?
        .ok_or_else(|| RepoError(anyhow::anyhow!("a sum returned no row")))?;
    let get = |c: &str| -> Result<Money, RepoError> {
        crate::convert::money(row.try_get("", c).repo("decoding a sum")?, "spend")
            .map_err(RepoError)
    };
    Ok(LevelUsage {
        spent_today: get("today")?,
        spent_month: get("month")?,
    })
}
