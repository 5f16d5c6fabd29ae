//! `waiaas-bench`: run the benchmarks and write docs/performance.md, or run the consistency
//! checker (`waiaas-bench check`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use waiaas_bench::check::{self, CheckOptions};
use waiaas_bench::report::{self, Machine, Results};
use waiaas_bench::scenarios::{self, Scale};

#[derive(Debug, Parser)]
#[command(
    name = "waiaas-bench",
    about = "Benchmarks and the consistency checker of WAIaaS"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Every scenario small enough for about a minute (CI runs this; figures are not
    /// meaningful, so the report is never written).
    #[arg(long)]
    quick: bool,
    /// Seconds per measured run (default 10, quick 1).
    #[arg(long)]
    seconds: Option<u64>,
    /// Only these scenarios.
    #[arg(long, value_enum)]
    only: Vec<Scenario>,
    /// Where docs/ is (the report goes to performance.md, bench/ and img/ under it).
    #[arg(long, default_value = "docs")]
    docs: PathBuf,
    /// Do not write the report.
    #[arg(long)]
    no_write: bool,
    /// Do not measure: render the report again from a results file written by an earlier run.
    #[arg(long)]
    from_json: Option<PathBuf>,
    /// The instances' `ledger.seal_interval_ms` (0: no sealer), to measure what sealing
    /// the ledger costs the postings; by default as deployed.
    #[arg(long, global = true)]
    seal_interval_ms: Option<u64>,
    /// The instances' `posting.workers` (posting workers, each posting one batch at a time),
    /// to measure how the batch size and throughput follow it; by default as deployed.
    #[arg(long, global = true)]
    posting_workers: Option<usize>,
    /// Instances connect as a role subject to row-level security (as the application role of
    /// `waiaas db roles` is), not as the superuser that bypasses it, to measure what the
    /// tenant policies cost.
    #[arg(long, global = true)]
    app_role: bool,
    /// `check` only: the instances reach PostgreSQL through a PgBouncer in transaction mode
    /// that the checker starts (`database.pooler = "pgbouncer-transaction"`), under every
    /// fault.
    #[arg(long, global = true)]
    pgbouncer: bool,
    /// A PostgreSQL server (any database of it) where bench databases are created; used when
    /// WAIAAS_TEST_DATABASE_URL is not set.
    #[arg(
        long,
        global = true,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Transfers,
    Reads,
    Http,
    RedisDown,
    Growth,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Two instances, writers, readers and a revoker, under every fault the checker knows
    /// (Redis and PostgreSQL crashed, restarted, paused, evicting, cut off; clients that
    /// disconnect); exits non-zero on any stale read, lost or duplicated money, or failed
    /// request.
    Check {
        /// Run time in seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// The short form (40 s, every fault once) run in CI.
        #[arg(long)]
        short: bool,
    },
}

async fn version(cmd: &str, arg: &str) -> String {
    tokio::process::Command::new(cmd)
        .arg(arg)
        .output()
        .await
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|_| format!("{cmd}: not found"))
}

async fn bench(cli: &Cli) -> anyhow::Result<Results> {
    let scale = Scale {
        run: Duration::from_secs(cli.seconds.unwrap_or(if cli.quick { 1 } else { 10 })),
        quick: cli.quick,
        quiet: false,
    };
    let wanted = |s: Scenario| cli.only.is_empty() || cli.only.contains(&s);
    let mut results = Results {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        command: std::env::args()
            .collect::<Vec<_>>()
            .join(" ")
            .replace(env!("CARGO_BIN_NAME"), "waiaas-bench"),
        quick: cli.quick,
        machine: Machine {
            cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            postgres: version("psql", "--version").await,
            redis: version("redis-server", "--version").await,
        },
        transfers: None,
        reads: None,
        http: None,
        redis_down: None,
        growth: None,
    };
    if wanted(Scenario::Transfers) {
        results.transfers = Some(scenarios::transfers::run(scale).await?);
    }
    if wanted(Scenario::Reads) {
        results.reads = Some(scenarios::reads::run(scale).await?);
    }
    if wanted(Scenario::Http) {
        results.http = Some(scenarios::http::run(scale).await?);
    }
    if wanted(Scenario::RedisDown) {
        results.redis_down = Some(scenarios::redis_down::run(scale).await?);
    }
    if wanted(Scenario::Growth) {
        results.growth = Some(scenarios::growth::run(scale).await?);
    }
    Ok(results)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    waiaas_testkit::use_database_server(&cli.database_url);
    if let Some(ms) = cli.seal_interval_ms {
        waiaas_bench::env::seal_interval_ms(ms);
    }
    if let Some(n) = cli.posting_workers {
        if !cli.no_write && !cli.quick && cli.command.is_none() {
            eprintln!(
                "error: --posting-workers measures a variant; add --no-write (performance.md describes the deployed settings)"
            );
            return ExitCode::from(2);
        }
        waiaas_bench::env::posting_workers(n);
    }
    if cli.app_role {
        waiaas_bench::env::use_app_role();
    }
    if cli.pgbouncer {
        if cli.app_role {
            eprintln!(
                "error: --pgbouncer with --app-role: a role under row-level security cannot serve behind a transaction pooler (docs/operations.md)"
            );
            return ExitCode::from(2);
        }
        waiaas_bench::env::use_pgbouncer();
    }
    waiaas_app::telemetry::init(&waiaas_app::settings::TelemetrySettings {
        filter: "warn,fred=off,sqlx=off".into(),
        ..Default::default()
    });
    match &cli.command {
        Some(Command::Check { seconds, short }) => {
            let opts = if *short {
                CheckOptions::short()
            } else {
                CheckOptions {
                    duration: Duration::from_secs(*seconds),
                    quiet: false,
                    ..CheckOptions::short()
                }
            };
            match check::run(opts).await {
                Ok(r) => {
                    println!(
                        "operations {}, faults injected {}, writes {}, reads {} ({} from Redis), failed write-throughs {}, fences {}",
                        r.operations,
                        r.faults,
                        r.writes,
                        r.reads,
                        r.l2_hits,
                        r.failed_write_throughs,
                        r.fences
                    );
                    println!(
                        "503 answers {} {:?}, requests abandoned half-way {}, retries {} ({} answered by a replay), left unresolved by the faults {}",
                        r.unavailable,
                        r.unavailable_by_code,
                        r.dropped,
                        r.retried,
                        r.replays,
                        r.leftovers
                    );
                    println!(
                        "revoked credentials tried {} (accepted {}), one version with two values {}, events {} (checked against a follower, every live feed and a webhook receiver)",
                        r.revocation_checks, r.revoked_accepted, r.mismatches, r.events
                    );
                    println!(
                        "postings in {} batches of {:.1} on average, {} posted one by one instead",
                        r.batches,
                        r.batched_postings as f64 / r.batches.max(1) as f64,
                        r.batches_split
                    );
                    println!(
                        "ledger rows sealed into the hash chain {} (recomputed by verify)",
                        r.sealed
                    );
                    println!(
                        "failed requests {}, stale reads {}, reads that went back {}, invariant violations {}",
                        r.failed, r.stale_reads, r.regressions, r.invariant_violations
                    );
                    for d in &r.details {
                        println!("  {d}");
                    }
                    if r.passed() {
                        println!("check: OK");
                        ExitCode::SUCCESS
                    } else {
                        println!("check: FAILED");
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        None => match match &cli.from_json {
            Some(path) => std::fs::read_to_string(path)
                .map_err(anyhow::Error::from)
                .and_then(|text| {
                    serde_json::from_str::<Results>(&text).map_err(anyhow::Error::from)
                }),
            None => bench(&cli).await,
        } {
            Ok(results) => {
                println!("{}", report::markdown(&results));
                if results.quick {
                    println!(
                        "(--quick: these figures are not meaningful; {} was not written)",
                        cli.docs.join("performance.md").display()
                    );
                } else if !cli.no_write {
                    if let Err(e) = report::write(&cli.docs, &results) {
                        eprintln!("error: {e:#}");
                        return ExitCode::from(2);
                    }
                    println!("wrote {}", cli.docs.join("performance.md").display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}
