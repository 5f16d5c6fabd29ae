//! `SeaORM` entity, written in the generated style. Conversions live in `crate::convert`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "transactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    pub status: String,
    pub asset: String,
    pub amount: i64,
    pub from_wallet_id: Option<Uuid>,
    pub to_wallet_id: Option<Uuid>,
    pub destination: Option<String>,
    pub memo: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub metadata: Json,
    pub owner_id: Uuid,
    pub initiator_type: String,
    pub initiator_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub decision_rule: Option<String>,
    pub reason: Option<String>,
    pub budget_daily_remaining: Option<i64>,
    pub budget_hourly_remaining: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub posted_at: Option<DateTimeUtc>,
    pub decision: Option<String>,
    pub decided_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    pub held_at: Option<DateTimeUtc>,
    pub captured: Option<i64>,
    pub hold_id: Option<Uuid>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub budget: Option<Json>,
    pub decision_level: Option<String>,
    pub approval_deadline: Option<DateTimeUtc>,
    pub mandate_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::ledger_entries::Entity")]
    LedgerEntries,
}

impl Related<super::ledger_entries::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::LedgerEntries.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
