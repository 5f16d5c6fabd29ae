//! Reading transactions: one by id, and a wallet's history by keyset pagination.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, Statement,
};
use waiaas_domain::{
    PageRequest, RepoError, Transaction, TransactionId, TransactionPage, TxCursor, WalletId,
};

use crate::entity::transactions;
use crate::error::RepoContext as _;

/// A wallet's transactions, paying or receiving, newest first, after a cursor. Each branch
/// is served by its own index on `(wallet, created_at DESC, id DESC)`, so a page costs the
/// same on the first page and the thousandth.
const PAGE: &str = "(SELECT * FROM transactions WHERE from_wallet_id = $1 AND (created_at, id) < ($2, $3) \
ORDER BY created_at DESC, id DESC LIMIT $4) \
UNION ALL \
(SELECT * FROM transactions WHERE to_wallet_id = $1 AND (created_at, id) < ($2, $3) \
ORDER BY created_at DESC, id DESC LIMIT $4) \
ORDER BY created_at DESC, id DESC LIMIT $4";

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

pub(crate) async fn list_for_wallet(
    db: &DatabaseConnection,
    wallet_id: WalletId,
    page: &PageRequest<TxCursor>,
) -> Result<TransactionPage, RepoError> {
    // One row more than asked tells whether there is a next page.
    let fetch = i64::from(page.limit) + 1;
    let (at, id) = match page.after {
        Some(c) => (c.created_at, *c.id.as_uuid()),
        None => (chrono::DateTime::<chrono::Utc>::MAX_UTC, uuid::Uuid::max()),
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            PAGE,
            [
                (*wallet_id.as_uuid()).into(),
                at.into(),
                id.into(),
                fetch.into(),
            ],
        ))
        .await
        .repo("listing a wallet's transactions")?;
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
