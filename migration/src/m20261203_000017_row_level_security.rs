//! Row-level security policies on every table that holds an owner's rows, as defence in
//! depth. Where it is turned on (`waiaas db roles` with `database.row_level_security`: it is
//! an option, it costs throughput), a role subject to it (the application role; not the
//! schema's owner, not a superuser) sees and writes only the rows of the tenant named by the
//! `waiaas.tenant` setting, which the service then sets on every connection it takes: an
//! owner's id while it serves that owner's request, `system` for its own jobs. Without the
//! setting nothing is visible, so a query that forgot its owner filter, or a connection that
//! never said whom it acts for, returns no other owner's rows.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables with an `owner_id` column.
pub const TABLES: [&str; 11] = [
    "agents",
    "api_keys",
    "sessions",
    "wallets",
    "transactions",
    "audit_logs",
    "notifications",
    "events",
    "mandates",
    "owner_budgets",
    "webhooks",
];

/// Whether a row of `owner` is visible to the current tenant (inlined into each policy; a
/// `CASE` so that `system` is never read as a uuid).
pub(crate) const FUNCTION: &str = r"
CREATE FUNCTION tenant_sees(owner UUID) RETURNS BOOLEAN LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE current_setting('waiaas.tenant', true)
        WHEN 'system' THEN true
        WHEN '' THEN false
        ELSE owner = current_setting('waiaas.tenant', true)::uuid
    END
$$
";

fn up() -> String {
    TABLES
        .iter()
        .map(|t| {
            format!(
                "CREATE POLICY tenant ON {t} USING (tenant_sees(owner_id)) WITH CHECK (tenant_sees(owner_id));\n"
            )
        })
        .collect()
}

fn down() -> String {
    TABLES
        .iter()
        .map(|t| {
            format!("DROP POLICY tenant ON {t};\nALTER TABLE {t} DISABLE ROW LEVEL SECURITY;\n")
        })
        .chain(std::iter::once(
            "DROP FUNCTION tenant_sees(UUID)".to_owned(),
        ))
        .collect()
}

/// The schema text, for the fingerprint.
pub(crate) fn text() -> String {
    format!("{FUNCTION}{}{}", up(), down())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(FUNCTION)
            .await?;
        crate::run(manager, &up()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, &down()).await
    }
}
