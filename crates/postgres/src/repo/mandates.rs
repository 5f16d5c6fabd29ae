//! Mandates: stored, read, listed and revoked; their use is counted by the posting that
//! spends under them (`posting::spend`).

use crate::pool::Begin as _;
use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement};
use uuid::Uuid;
use waiaas_domain::{
    AssetCode, AuditContext, Counterparty, Destination, Mandate, MandateId, NewAuditEntry, OwnerId,
    RepoError, WalletId,
};

use crate::audit;
use crate::convert::money;
use crate::error::{RepoContext as _, commit};

/// Locks a mandate for a spend or a revocation (after the wallets). `$1`: id.
pub(crate) const LOCK_MANDATE: &str = "SELECT * FROM mandates WHERE id = $1 FOR UPDATE";

/// Counts one use of `$2` minor units of mandate `$1` at `$3`.
pub(crate) const USE_MANDATE: &str = "UPDATE mandates SET uses_left = uses_left - 1, \
remaining = remaining - $2, updated_at = $3 WHERE id = $1";

/// A mandate from its row.
pub(crate) fn decode(r: &QueryResult) -> anyhow::Result<Mandate> {
    let to: Option<Uuid> = r.try_get("", "to_wallet_id")?;
    let destination: Option<String> = r.try_get("", "destination")?;
    let payee = match (to, destination) {
        (Some(w), _) => Some(Counterparty::Wallet(WalletId::from_uuid(w))),
        (None, Some(d)) => Some(Counterparty::External(Destination::parse(&d)?)),
        (None, None) => None,
    };
    let count = |c: &str| -> anyhow::Result<u32> { Ok(u32::try_from(r.try_get::<i32>("", c)?)?) };
    Ok(Mandate {
        id: MandateId::from_uuid(r.try_get("", "id")?),
        wallet_id: WalletId::from_uuid(r.try_get("", "wallet_id")?),
        owner_id: OwnerId::from_uuid(r.try_get("", "owner_id")?),
        asset: AssetCode::parse(&r.try_get::<String>("", "asset")?)?,
        max_amount: money(r.try_get("", "max_amount")?, "max_amount")?,
        total_amount: r
            .try_get::<Option<i64>>("", "total_amount")?
            .map(|v| money(v, "total_amount"))
            .transpose()?,
        remaining: r
            .try_get::<Option<i64>>("", "remaining")?
            .map(|v| money(v, "remaining"))
            .transpose()?,
        max_uses: count("max_uses")?,
        uses_left: count("uses_left")?,
        payee,
        expires_at: r.try_get("", "expires_at")?,
        revoked_at: r.try_get("", "revoked_at")?,
        created_at: r.try_get("", "created_at")?,
        updated_at: r.try_get("", "updated_at")?,
    })
}

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn record(action: &'static str, m: &Mandate) -> NewAuditEntry {
    NewAuditEntry {
        owner_id: Some(m.owner_id),
        action,
        resource_type: "mandate",
        resource_id: m.id.to_string(),
        old_value: None,
        new_value: serde_json::to_value(m).ok(),
    }
}

pub(crate) async fn create(
    db: &DatabaseConnection,
    m: &Mandate,
    ctx: &AuditContext,
) -> Result<(), RepoError> {
    let (to, destination) = match &m.payee {
        Some(Counterparty::Wallet(w)) => (Some(*w.as_uuid()), None),
        Some(Counterparty::External(d)) => (None, Some(d.as_str().to_owned())),
        None => (None, None),
    };
    let minor = |v: Option<waiaas_domain::Money>| v.map(waiaas_domain::Money::minor_units);
    let txn = db.start().await.repo("beginning a mandate")?;
    txn.execute_raw(stmt(
        "INSERT INTO mandates (id, wallet_id, owner_id, asset, max_amount, total_amount, remaining, \
         max_uses, uses_left, to_wallet_id, destination, expires_at, revoked_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13, $13)",
        vec![
            (*m.id.as_uuid()).into(),
            (*m.wallet_id.as_uuid()).into(),
            (*m.owner_id.as_uuid()).into(),
            m.asset.as_str().into(),
            m.max_amount.minor_units().into(),
            minor(m.total_amount).into(),
            minor(m.remaining).into(),
            i32::try_from(m.max_uses).unwrap_or(i32::MAX).into(),
            i32::try_from(m.uses_left).unwrap_or(i32::MAX).into(),
            to.into(),
            destination.into(),
            m.expires_at.into(),
            m.created_at.into(),
        ],
    ))
    .await
    .repo("storing a mandate")?;
    audit::record(&txn, ctx, record("mandate.create", m), m.created_at)
        .await
        .repo("auditing a mandate")?;
    commit(txn, "committing a mandate").await.map_err(RepoError)
}

pub(crate) async fn get(
    db: &DatabaseConnection,
    id: MandateId,
) -> Result<Option<Mandate>, RepoError> {
    db.query_one_raw(stmt(
        "SELECT * FROM mandates WHERE id = $1",
        vec![(*id.as_uuid()).into()],
    ))
    .await
    .repo("reading a mandate")?
    .map(|r| decode(&r).map_err(RepoError))
    .transpose()
}

pub(crate) async fn list(
    db: &DatabaseConnection,
    wallet: WalletId,
    limit: u32,
) -> Result<Vec<Mandate>, RepoError> {
    db.query_all_raw(stmt(
        "SELECT * FROM mandates WHERE wallet_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        vec![(*wallet.as_uuid()).into(), i64::from(limit).into()],
    ))
    .await
    .repo("listing mandates")?
    .iter()
    .map(|r| decode(r).map_err(RepoError))
    .collect()
}

pub(crate) async fn revoke(
    db: &DatabaseConnection,
    id: MandateId,
    owner: OwnerId,
    ctx: &AuditContext,
) -> Result<Option<Mandate>, RepoError> {
    let now = Utc::now();
    let txn = db.start().await.repo("beginning a revocation")?;
    let Some(row) = txn
        .query_one_raw(stmt(LOCK_MANDATE, vec![(*id.as_uuid()).into()]))
        .await
        .repo("locking a mandate")?
    else {
        return Ok(None);
    };
    let mandate = decode(&row).map_err(RepoError)?;
    if mandate.owner_id != owner {
        return Ok(None);
    }
    if mandate.revoked_at.is_some() {
        return Ok(Some(mandate));
    }
    let row = txn
        .query_one_raw(stmt(
            "UPDATE mandates SET revoked_at = $2, updated_at = $2 WHERE id = $1 RETURNING *",
            vec![(*id.as_uuid()).into(), now.into()],
        ))
        .await
        .repo("revoking a mandate")?
        .ok_or_else(|| RepoError(anyhow::anyhow!("the locked mandate vanished")))?;
    let revoked = decode(&row).map_err(RepoError)?;
    audit::record(&txn, ctx, record("mandate.revoke", &revoked), now)
        .await
        .repo("auditing a revocation")?;
    commit(txn, "committing a revocation")
        .await
        .map_err(RepoError)?;
    Ok(Some(revoked))
}
