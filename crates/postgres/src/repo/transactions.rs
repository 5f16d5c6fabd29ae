//! Reading transactions: one by id, and a wallet's or an owner's history, filtered, by
//! keyset pagination.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, Statement,
};
use waiaas_domain::{
    OwnerId, PageRequest, RepoError, Transaction, TransactionId, TransactionPage,
    TransactionStatus, TxCursor, TxFilter, WalletId, clamp_time,
};

use crate::entity::transactions;
use crate::error::RepoContext as _;

/// Whose transactions a page lists.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// A wallet's, paying or receiving: each side served by its own index on
    /// `(wallet, created_at DESC, id DESC)`, so a page costs the same on the first page and
    /// the thousandth.
    Wallet(WalletId),
    /// Every wallet's of one owner, served by the index on `(owner_id, created_at DESC)`.
    Owner(OwnerId),
}

/// The page query of a scope, with the filter's predicates (parameters from `$5` on) after
/// the keyset condition. Metadata containment is served by the GIN index on `metadata`.
///
/// Public for the test that `EXPLAIN`s it; not part of the crate's API.
#[must_use]
pub fn page_sql(scope: Scope, filter: &TxFilter) -> (String, Vec<sea_orm::Value>) {
    let mut predicates = String::new();
    let mut values: Vec<sea_orm::Value> = Vec::new();
    let mut add = |sql: &str, value: sea_orm::Value| {
        values.push(value);
        predicates.push_str(&format!(" AND {sql} ${}", values.len() + 4));
    };
    if let Some(object) = filter.metadata_object() {
        add("metadata @>", object.into());
    }
    match (filter.status, filter.as_of) {
        // A hold past its expiry is expired as of the read, released or not.
        (Some(TransactionStatus::Held), Some(at)) => {
            add("status = 'held' AND expires_at >", at.into());
        }
        (Some(TransactionStatus::Expired), Some(at)) => {
            add(
                "status IN ('held', 'expired') AND \
                 CASE WHEN status = 'held' THEN expires_at ELSE '-infinity'::timestamptz END <=",
                at.into(),
            );
        }
        (Some(status), _) => add("status =", status.as_str().into()),
        (None, _) => {}
    }
    if let Some(kind) = filter.kind {
        add("kind =", kind.as_str().into());
    }
    if let Some(from) = filter.from {
        add("created_at >=", clamp_time(from).into());
    }
    if let Some(to) = filter.to {
        add("created_at <", clamp_time(to).into());
    }
    let branch = |column: &str| {
        format!(
            "SELECT * FROM transactions WHERE {column} = $1 AND (created_at, id) < ($2, $3){predicates} \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        )
    };
    let sql = match scope {
        Scope::Wallet(_) => format!(
            "({}) UNION ALL ({}) ORDER BY created_at DESC, id DESC LIMIT $4",
            branch("from_wallet_id"),
            branch("to_wallet_id")
        ),
        Scope::Owner(_) => branch("owner_id"),
    };
    (sql, values)
}

pub(crate) async fn get(
    db: &DatabaseConnection,
    id: TransactionId,
) -> Result<Option<Transaction>, RepoError> {
    transactions::Entity::find_by_id(*id.as_uuid())
        .one(db)
        .await
        .repo("reading a transaction")?
        .map(Transaction::try_from)
        .transpose()
        .map_err(RepoError)
}

pub(crate) async fn list(
    db: &DatabaseConnection,
    scope: Scope,
    filter: &TxFilter,
    page: &PageRequest<TxCursor>,
) -> Result<TransactionPage, RepoError> {
    // One row more than asked tells whether there is a next page.
    let fetch = i64::from(page.limit) + 1;
    let (at, id) = match page.after {
        Some(c) => (c.created_at, *c.id.as_uuid()),
        None => (chrono::DateTime::<chrono::Utc>::MAX_UTC, uuid::Uuid::max()),
    };
    let subject = match scope {
        Scope::Wallet(w) => *w.as_uuid(),
        Scope::Owner(o) => *o.as_uuid(),
    };
    let (sql, filters) = page_sql(scope, filter);
    let mut values: Vec<sea_orm::Value> = vec![subject.into(), at.into(), id.into(), fetch.into()];
    values.extend(filters);
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await
        .repo("listing transactions")?;
    let mut items = rows
        .iter()
        .map(|r| {
            let m = transactions::Model::from_query_result(r, "").repo("decoding a transaction")?;
            Transaction::try_from(m).map_err(RepoError)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|t| TxCursor {
            created_at: t.created_at,
            id: t.id,
        })
    } else {
        None
    };
    Ok(TransactionPage { items, next_cursor })
}
