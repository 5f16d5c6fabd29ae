//! `waiaas`: the wallet service for AI agents and its operator commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use waiaas_app::database::MigrateAction;
use waiaas_app::{Settings, commands, serve, telemetry};

#[derive(Debug, Parser)]
#[command(name = "waiaas", version, about = "A wallet service for AI agents")]
struct Cli {
    /// Directory holding default.toml and <WAIAAS_ENV>.toml.
    #[arg(
        long,
        env = "WAIAAS_CONFIG_DIR",
        default_value = "config",
        global = true
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (creates and migrates the database first, unless told not to).
    Serve,
    /// Create an owner and print its API key.
    Bootstrap {
        /// The owner's name.
        #[arg(long, default_value = "first owner")]
        name: String,
    },
    /// Inspect or empty this service's Redis keys.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: Migrate,
    },
    /// Check that every balance equals its ledger and every transaction sums to zero.
    Reconcile,
    /// Recompute the tamper-evident chain over transactions, ledger entries and audit rows;
    /// exits non-zero naming the first row that does not match.
    Verify {
        /// Start from a trusted checkpoint `position:hash` (as `GET /v1/ledger/head` gave
        /// it) instead of the beginning.
        #[arg(long)]
        from: Option<String>,
    },
    /// Create a demo owner, two agents with wallets and policies, and a few days of
    /// activity; print the keys and what to try.
    Demo {
        /// Days of past activity.
        #[arg(long, default_value_t = 3)]
        days: u32,
    },
    /// Database roles.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
}

#[derive(Debug, Subcommand)]
enum DbAction {
    /// Create the application role (`database.app_role`) and grant it what `serve` needs,
    /// connected as the migration role (`database.migration_url`): no DDL, and the ledger,
    /// audit trail, events and chain append-only.
    Roles {
        /// Print the SQL instead of running it (for a DBA to run).
        #[arg(long)]
        print: bool,
        /// A file holding the role's password (set when given).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum CacheAction {
    /// Count this service's keys, kind by kind.
    Stats,
    /// Delete this service's keys (always safe: Redis holds nothing that is not in
    /// PostgreSQL). Starts a new cache epoch first, so no instance serves an entry written
    /// before the flush, even one a slow reader was still filling.
    Flush,
}

#[derive(Debug, Subcommand)]
enum Migrate {
    /// Apply pending migrations (creating the database if missing).
    Up,
    /// Roll back the last migrations. This DROPS the tables and columns they created, with
    /// all the data in them (ledger, balances, audit trail): it asks for `--yes`.
    Down {
        /// How many.
        #[arg(long, default_value_t = 1)]
        steps: u32,
        /// Confirms that the tables and data of the rolled-back migrations are dropped.
        #[arg(long)]
        yes: bool,
    },
    /// Show which migrations are applied.
    Status,
    /// Drop every table and migrate from scratch (DESTROYS ALL DATA): it asks for `--yes`.
    Fresh {
        /// Confirms that every table and all data are dropped.
        #[arg(long)]
        yes: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.telemetry);
    let result = match cli.command {
        Command::Serve => serve::serve(settings).await.map(|()| true),
        Command::Bootstrap { name } => commands::bootstrap(&settings, &name).await.map(|()| true),
        Command::Cache { action } => {
            commands::cache(&settings, matches!(action, CacheAction::Flush))
                .await
                .map(|()| true)
        }
        Command::Migrate { action } => {
            let (action, confirmed) = match action {
                Migrate::Up => (MigrateAction::Up, true),
                Migrate::Down { steps, yes } => (MigrateAction::Down(steps), yes),
                Migrate::Status => (MigrateAction::Status, true),
                Migrate::Fresh { yes } => (MigrateAction::Fresh, yes),
            };
            if !confirmed {
                eprintln!(
                    "error: this drops tables and the data in them; run it again with --yes if that is what you want"
                );
                return ExitCode::from(2);
            }
            commands::migrate(&settings, action).await.map(|()| true)
        }
        Command::Reconcile => commands::reconcile(&settings).await,
        Command::Verify { from } => commands::verify(&settings, from.as_deref()).await,
        Command::Demo { days } => match waiaas_app::demo::demo(&settings, days).await {
            Ok(report) => {
                print!("{report}");
                let api = format!("http://{}", settings.server.listen);
                println!("\ntry it: start the service (`scripts/run`, or `waiaas serve`), then");
                println!(
                    "  open the owner console at {api}/console and sign in with the owner api_key"
                );
                println!(
                    "  curl -s {api}/v1/transactions/{} -H 'Authorization: Bearer {}'",
                    report.pending, report.owner_key
                );
                println!(
                    "  curl -s -X POST {api}/v1/transactions/{}/approve -H 'Authorization: Bearer {}'",
                    report.pending, report.owner_key
                );
                println!("  the API is described at {api}/openapi.json");
                Ok(true)
            }
            Err(e) => Err(e),
        },
        Command::Db {
            action:
                DbAction::Roles {
                    print,
                    password_file,
                },
        } => {
            let password = match password_file.map(std::fs::read_to_string).transpose() {
                Ok(p) => p.map(|p| p.trim_end_matches(['\n', '\r']).to_owned()),
                Err(e) => {
                    eprintln!("error: reading the password file: {e}");
                    return ExitCode::from(2);
                }
            };
            waiaas_app::roles::roles(&settings, print, password.as_deref())
                .await
                .map(|()| true)
        }
    };
    // The spans still buffered go out before the process ends (a blocking flush).
    let _ = tokio::task::spawn_blocking(telemetry::shutdown).await;
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
