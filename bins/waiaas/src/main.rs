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
}

#[derive(Debug, Subcommand)]
enum CacheAction {
    /// Count this service's keys, kind by kind.
    Stats,
    /// Delete this service's keys (always safe: Redis holds nothing that is not in PostgreSQL).
    Flush,
}

#[derive(Debug, Subcommand)]
enum Migrate {
    /// Apply pending migrations (creating the database if missing).
    Up,
    /// Roll back migrations.
    Down {
        /// How many.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// Show which migrations are applied.
    Status,
    /// Drop every table and migrate from scratch (destroys all data).
    Fresh,
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
            let action = match action {
                Migrate::Up => MigrateAction::Up,
                Migrate::Down { steps } => MigrateAction::Down(steps),
                Migrate::Status => MigrateAction::Status,
                Migrate::Fresh => MigrateAction::Fresh,
            };
            commands::migrate(&settings, action).await.map(|()| true)
        }
        Command::Reconcile => commands::reconcile(&settings).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
