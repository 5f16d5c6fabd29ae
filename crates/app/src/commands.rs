//! The operator commands behind the binary's subcommands.

use crate::database::{self, MigrateAction};
use crate::settings::Settings;

/// `waiaas migrate …`: prints what was done.
///
/// # Errors
/// When PostgreSQL cannot be reached or a migration fails.
pub async fn migrate(settings: &Settings, action: MigrateAction) -> anyhow::Result<()> {
    let pg = settings.database.pg();
    if settings.database.create_database && action != MigrateAction::Status {
        database::create_if_missing(&pg).await?;
    }
    let db = database::connect(&pg).await?;
    println!("{}", database::migrate(&db, action).await?);
    db.close().await?;
    Ok(())
}

/// `waiaas reconcile`: prints the report; `Ok(false)` when anything does not add up.
///
/// # Errors
/// When PostgreSQL cannot be read.
pub async fn reconcile(settings: &Settings) -> anyhow::Result<bool> {
    let db = database::connect(&settings.database.pg()).await?;
    let report = waiaas_postgres::reconcile(&db).await?;
    println!("{report}");
    db.close().await?;
    Ok(report.is_consistent())
}
