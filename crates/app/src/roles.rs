//! Least privilege: the schema belongs to the migration role (the one `database.migration_url`
//! connects as); `serve` runs as the application role (`database.app_role`), which may read
//! and write what serving needs and nothing else: no DDL, and on the ledger, the audit
//! trail, the events and the hash chain only `INSERT` and `SELECT` (events: setting their
//! place in the stream once; old events go only through the owner's `delete_events_before`).
//! `waiaas db roles` creates the role and grants; `--print` prints the SQL for a DBA.

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::database;
use crate::settings::Settings;

/// Tables the application role may only add to and read.
pub const APPEND_ONLY: [&str; 4] = ["ledger_entries", "audit_logs", "events", "ledger_chain"];

/// Checks that `name` is a plain role name (it is written into SQL).
///
/// # Errors
/// Anything but lowercase letters, digits and underscores, starting with a letter or `_`,
/// at most 63 characters.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        anyhow::bail!(
            "role name `{name}` must be lowercase letters, digits and underscores (at most 63, not starting with a digit)"
        )
    }
}

/// A SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The statements that create the application role (when missing) and give it exactly what
/// `serve` needs on `database`, and turn row-level security on the tenant tables on or off
/// (`row_level_security`). `password` is set when given (`None` leaves it as it is).
///
/// # Errors
/// A role or database name that is not plain.
pub fn statements(
    role: &str,
    database: &str,
    password: Option<&str>,
    row_level_security: bool,
) -> anyhow::Result<Vec<String>> {
    check_name(role)?;
    check_name(database).context("the database name")?;
    let mut s = vec![format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {r}) THEN CREATE ROLE {role} LOGIN; END IF; END $$",
        r = literal(role)
    )];
    if let Some(p) = password {
        s.push(format!("ALTER ROLE {role} PASSWORD {}", literal(p)));
    }
    s.extend([
        format!("GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role}"),
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_owned(),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("REVOKE INSERT, UPDATE, DELETE ON seaql_migrations FROM {role}"),
        format!(
            "REVOKE UPDATE, DELETE ON {} FROM {role}",
            APPEND_ONLY.join(", ")
        ),
        format!("GRANT UPDATE (seq) ON events TO {role}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"),
        format!("GRANT EXECUTE ON FUNCTION delete_events_before(TIMESTAMPTZ, INTEGER) TO {role}"),
    ]);
    let switch = if row_level_security {
        "ENABLE"
    } else {
        "DISABLE"
    };
    s.extend(
        waiaas_migration::TENANT_TABLES
            .iter()
            .map(|t| format!("ALTER TABLE {t} {switch} ROW LEVEL SECURITY")),
    );
    Ok(s)
}

/// The database a URL names (the maintenance URL's split, `database::split_database`).
fn database_name(url: &str) -> anyhow::Result<String> {
    database::split_database(url)
        .map(|(_, name)| name)
        .context("the database URL names no database")
}

/// `waiaas db roles`: creates the application role and grants (or, with `print`, prints the
/// SQL with the password left out). Runs as the migration role; run it again after every
/// `migrate up` that adds tables (`migrate up` does it by itself when the role exists).
///
/// # Errors
/// When PostgreSQL refuses (the migration role may not create roles: print the SQL and have
/// a superuser run it).
pub async fn roles(settings: &Settings, print: bool, password: Option<&str>) -> anyhow::Result<()> {
    let pg = settings.database.migration_pg();
    let role = &settings.database.app_role;
    let database = database_name(&pg.url)?;
    if print {
        for s in statements(
            role,
            &database,
            password.map(|_| "<password>"),
            settings.database.row_level_security,
        )? {
            println!("{s};");
        }
        return Ok(());
    }
    let db = database::connect_for_maintenance(&pg).await?;
    for s in statements(
        role,
        &database,
        password,
        settings.database.row_level_security,
    )? {
        db.execute_unprepared(&s)
            .await
            .with_context(|| format!("granting to `{role}` (run `waiaas db roles --print` and have a superuser run the SQL)"))?;
    }
    db.close().await?;
    println!(
        "role `{role}` may now serve database `{database}` (no DDL; ledger, audit trail, events and chain append-only; tenant row-level security {})",
        if settings.database.row_level_security {
            "on"
        } else {
            "off"
        }
    );
    Ok(())
}

/// Grants again to the application role after migrations, when it exists (new tables).
///
/// # Errors
/// When PostgreSQL refuses.
pub async fn regrant_if_present(
    db: &sea_orm::DatabaseConnection,
    settings: &Settings,
) -> anyhow::Result<bool> {
    let role = &settings.database.app_role;
    check_name(role)?;
    let exists = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_roles WHERE rolname = $1",
            [role.clone().into()],
        ))
        .await?
        .is_some();
    if !exists {
        return Ok(false);
    }
    let database = database_name(&settings.database.migration_pg().url)?;
    // The role exists already: its password is not touched, and creating it is skipped.
    for s in statements(role, &database, None, settings.database.row_level_security)?
        .into_iter()
        .skip(1)
    {
        db.execute_unprepared(&s)
            .await
            .with_context(|| format!("granting to `{role}`"))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_passwords_quoted() {
        assert!(check_name("waiaas_app").is_ok());
        for bad in ["", "App", "a;drop", "1a", "a-b", &"a".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let s = statements("app", "waiaas", Some("it's"), false).unwrap();
        assert!(
            s.contains(&"ALTER ROLE app PASSWORD 'it''s'".to_owned()),
            "{s:?}"
        );
        assert!(s.contains(&"ALTER TABLE wallets DISABLE ROW LEVEL SECURITY".to_owned()));
        let on = statements("app", "waiaas", None, true).unwrap();
        assert!(on.contains(&"ALTER TABLE wallets ENABLE ROW LEVEL SECURITY".to_owned()));
        assert_eq!(
            database_name("postgres://u:p@h:5432/waiaas?sslmode=disable").unwrap(),
            "waiaas"
        );
        assert!(database_name("postgres://u@h:5432").is_err());
    }
}
