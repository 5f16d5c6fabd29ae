//! `waiaas-migration`: the sea-orm-migration runner on its own. The `waiaas migrate`
//! subcommand does the same with the service's settings; this binary exists for operators
//! who deploy migrations separately. Usage: `waiaas-migration <up|down|status|fresh> [URL]`.

use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_orm::Database;
use waiaas_migration::Migrator;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "status".to_owned());
    let url = args
        .next()
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/waiaas".to_owned());
    let db = Database::connect(url.as_str()).await?;
    match command.as_str() {
        "up" => Migrator::up(&db, None).await?,
        "down" => Migrator::down(&db, Some(1)).await?,
        "fresh" => Migrator::fresh(&db).await?,
        "status" => {
            for m in Migrator::get_migration_with_status(&db).await? {
                println!("{:<50} {}", m.name(), m.status());
            }
        }
        other => {
            return Err(format!("unknown command `{other}`: use up, down, status or fresh").into());
        }
    }
    Ok(())
}
