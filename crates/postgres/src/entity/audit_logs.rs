//! `SeaORM` entity, written in the generated style. Conversions live in `crate::convert`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_logs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: Option<Uuid>,
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub old_value: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub new_value: Option<Json>,
    pub request_id: Option<String>,
    #[sea_orm(
        column_type = r#"custom("INET")"#,
        select_as = "TEXT",
        save_as = "INET",
        nullable
    )]
    pub ip: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
