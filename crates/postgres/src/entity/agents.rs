//! `SeaORM` entity, written in the generated style. Conversions live in `crate::convert`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub status: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub metadata: Json,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::owners::Entity",
        from = "Column::OwnerId",
        to = "super::owners::Column::Id"
    )]
    Owners,
    #[sea_orm(has_many = "super::wallets::Entity")]
    Wallets,
}

impl Related<super::owners::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Owners.def()
    }
}

impl Related<super::wallets::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Wallets.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
