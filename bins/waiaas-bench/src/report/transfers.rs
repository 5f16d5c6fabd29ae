//! The transfers part of the report: its targets, tables and plots.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use super::{Target, stat_cells};
use crate::scenarios::transfers::{TransferResults, TransferRow};

fn at(rows: &[TransferRow], clients: usize) -> Option<&TransferRow> {
    rows.iter().find(|x| x.concurrency == clients)
}

/// The targets of the issue on transfers: batched against both pgbench baselines at 16
/// clients, and latency at one client against `batch_size = 1`.
pub(super) fn targets(t: &mut Vec<Target>, tr: &TransferResults) {
    let vs = |row: &TransferRow, base: f64, ratio: f64| {
        format!(
            "{:.0} vs {base:.0} tx/s = ×{ratio:.2}",
            row.batched.throughput
        )
    };
    if let Some(row) = at(&tr.uniform, 16) {
        t.push(Target {
            target:
                "transfers at 16 clients, batched ≥ 2 × pgbench with the single-transfer statements"
                    .into(),
            figure: vs(row, row.pgbench.tps, row.vs_pgbench),
            met: row.vs_pgbench >= 2.0,
        });
        t.push(Target {
            target: "transfers at 16 clients, batched ≥ 1 × pgbench calling the PL/pgSQL one-call transfer".into(),
            figure: vs(row, row.plpgsql.tps, row.vs_plpgsql),
            met: row.vs_plpgsql >= 1.0,
        });
    }
    if let Some(row) = at(&tr.hot_pair, 16) {
        t.push(Target {
            target:
                "hot pair at 16 clients, batched ≥ 5 × pgbench with the single-transfer statements"
                    .into(),
            figure: vs(row, row.pgbench.tps, row.vs_pgbench),
            met: row.vs_pgbench >= 5.0,
        });
    }
    for (name, rows) in [("uniform", &tr.uniform), ("hot pair", &tr.hot_pair)] {
        if let Some(row) = at(rows, 1) {
            t.push(Target {
                target: format!(
                    "{name} at 1 client: batched p99 no worse than with batch_size = 1"
                ),
                figure: format!("{:.2} vs {:.2} ms", row.batched.p99_ms, row.single.p99_ms),
                met: row.batched.p99_ms <= row.single.p99_ms,
            });
        }
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"))
}

/// One workload: the service in both modes, both baselines and the ratios; then pgbench's
/// latencies.
fn table(m: &mut String, title: &str, img: &str, rows: &[TransferRow]) {
    let _ = writeln!(
        m,
        "\n### {title}\n\n| clients | batched tx/s | p50 ms | p99 ms | mean batch | batch 1 tx/s | p50 ms | p99 ms \
         | pgbench statements tx/s | pgbench PL/pgSQL tx/s | ceiling, {n} per call tx/s | batched / statements | batched / PL/pgSQL \
         | batched / batch 1 | ceiling / statements |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        n = crate::baseline::CEILING_BATCH
    );
    for row in rows {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {:.0} | {:.0} | {} | ×{:.2} | ×{:.2} | ×{:.2} | {} |",
            row.concurrency,
            stat_cells(&row.batched),
            row.mean_batch
                .map_or_else(|| "n/a".to_owned(), |b| format!("{b:.1}")),
            stat_cells(&row.single),
            row.pgbench.tps,
            row.plpgsql.tps,
            row.ceiling_tps()
                .map_or_else(|| "n/a".to_owned(), |c| format!("{c:.0}")),
            row.vs_pgbench,
            row.vs_plpgsql,
            row.vs_single,
            row.ceiling_tps().map_or_else(
                || "n/a".to_owned(),
                |c| format!("×{:.2}", c / row.pgbench.tps.max(1e-9))
            )
        );
    }
    let _ = writeln!(
        m,
        "\npgbench latencies (p50 and p99 from its transaction log, average from its report):\n\n\
         | clients | statements p50 ms | p99 ms | avg ms | PL/pgSQL p50 ms | p99 ms | avg ms | ceiling p50 ms (a call) | p99 ms | avg ms |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    for row in rows {
        let ceiling = row.ceiling.as_ref().map_or_else(
            || "n/a | n/a | n/a".to_owned(),
            |c| format!("{} | {} | {:.2}", ms(c.p50_ms), ms(c.p99_ms), c.avg_ms),
        );
        let _ = writeln!(
            m,
            "| {} | {} | {} | {:.2} | {} | {} | {:.2} | {ceiling} |",
            row.concurrency,
            ms(row.pgbench.p50_ms),
            ms(row.pgbench.p99_ms),
            row.pgbench.avg_ms,
            ms(row.plpgsql.p50_ms),
            ms(row.plpgsql.p99_ms),
            row.plpgsql.avg_ms
        );
    }
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.batched.errors + r.single.errors > 0)
        .map(|r| {
            format!(
                "{} at {} clients (batched), {} (batch 1)",
                r.batched.errors, r.concurrency, r.single.errors
            )
        })
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(m, "\n**Failed transfers:** {}.", failed.join("; "));
    }
    let _ = writeln!(m, "\n![{title}](img/{img})");
}

/// Section 1 of the page.
pub(super) fn section(m: &mut String, tr: &TransferResults) {
    let _ = writeln!(
        m,
        "\n## 1. Transfers\n\nThe service (domain service, cache decorators, PostgreSQL adapter; one wallet-to-wallet \
        transfer of 1–100 with an idempotency key per operation) posting in batches as deployed (`posting` settings by \
        default: {} workers, at most {} per batch; *mean batch* is postings over batches taken by the workers during the \
        run), and posting each transfer in its own transaction (`batch_size = 1`), against `pgbench -M prepared` running \
        the adapter's own single-transfer statements (`sql::TRANSFER_STATEMENTS`, checked by a test to be exactly what a \
        transfer issues), `pgbench` calling `waiaas_bench_transfer`, a PL/pgSQL function doing one whole transfer per \
        call, and `pgbench` calling `waiaas_bench_transfers`, which does {} such transfers per call and commit with \
        their wallets locked first (*ceiling*: one round trip and one commit per batch and no client work, what \
        PostgreSQL itself allows a batched design on this machine), at the same concurrency. Uniform: each transfer between two random wallets; hot pair: every client moves \
        money between the same two wallets, in a random direction. All use plain TCP (pgbench runs with \
        `PGSSLMODE=disable`, the service with `database.sslmode = \"disable\"`: both would otherwise negotiate TLS with a server that offers it). Each run of the \
        service starts a new instance, which reads every wallet once before the measured run, so that it holds wallet \
        ownership in L1 as a running instance does; the events earlier runs committed (pgbench's transfers fire the \
        events trigger with no relay beside them) are placed before it starts, so its relay does not work through \
        that backlog while the clock runs.",
        waiaas_app::Settings::default().posting.workers,
        waiaas_app::Settings::default().posting.batch_size,
        crate::baseline::CEILING_BATCH
    );
    table(m, "Uniform wallets", "transfers.svg", &tr.uniform);
    table(m, "Hot pair", "transfers-hot-pair.svg", &tr.hot_pair);
}

/// A plotted line: its label, colour and figure.
type Series = (&'static str, RGBColor, fn(&TransferRow) -> f64);

/// Throughput by clients of the four runs of one workload.
pub(super) fn plot(path: &Path, title: &str, rows: &[TransferRow]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = rows
        .iter()
        .flat_map(|r| {
            [
                r.batched.throughput,
                r.single.throughput,
                r.pgbench.tps,
                r.plpgsql.tps,
                r.ceiling_tps().unwrap_or(0.0),
            ]
        })
        .fold(1.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Transfers per second by clients: {title}"),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d((0.5_f64..80.0_f64).log_scale(), 0.0..max)?;
    chart
        .configure_mesh()
        .x_desc("clients")
        .y_desc("tx/s")
        .draw()?;
    let lines: [Series; 5] = [
        ("service, batched", BLUE, |r| r.batched.throughput),
        ("service, batch_size = 1", CYAN, |r| r.single.throughput),
        ("pgbench, same statements", RED, |r| r.pgbench.tps),
        ("pgbench, PL/pgSQL one call", MAGENTA, |r| r.plpgsql.tps),
        ("ceiling: PL/pgSQL, 16 per call", BLACK, |r| {
            r.ceiling_tps().unwrap_or(0.0)
        }),
    ];
    for (label, color, f) in lines {
        let points: Vec<_> = rows.iter().map(|r| (r.concurrency as f64, f(r))).collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::RunStats;
    use crate::pgbench::PgbenchStats;
    use crate::report::Results;

    fn run(clients: usize, tps: f64, p99: f64) -> RunStats {
        RunStats {
            concurrency: clients,
            ok: 100,
            errors: 0,
            seconds: 1.0,
            throughput: tps,
            p50_ms: p99 / 4.0,
            p99_ms: p99,
            max_ms: p99 * 2.0,
        }
    }

    fn row(clients: usize, batched: f64, pgbench: f64) -> TransferRow {
        let pg = |tps| PgbenchStats {
            tps,
            avg_ms: 1.0,
            p50_ms: Some(0.9),
            p99_ms: None,
        };
        TransferRow {
            concurrency: clients,
            batched: run(clients, batched, 2.0),
            mean_batch: (clients > 1).then_some(7.5),
            single: run(clients, 100.0, 3.0),
            pgbench: pg(pgbench),
            plpgsql: pg(pgbench * 2.0),
            ceiling: (clients > 1).then(|| pg(pgbench / 4.0)),
            vs_pgbench: batched / pgbench,
            vs_plpgsql: batched / (pgbench * 2.0),
            vs_single: batched / 100.0,
        }
    }

    fn results() -> TransferResults {
        TransferResults {
            uniform: vec![row(1, 100.0, 200.0), row(16, 1000.0, 400.0)],
            hot_pair: vec![row(1, 100.0, 200.0), row(16, 1000.0, 100.0)],
        }
    }

    #[test]
    fn the_targets_compare_batched_transfers_with_both_pgbench_baselines() {
        let mut t = Vec::new();
        targets(&mut t, &results());
        let met: Vec<bool> = t.iter().map(|x| x.met).collect();
        // ×2.5 statements (met), ×1.25 PL/pgSQL (met), hot pair ×10 (met), p99 2 ≤ 3 twice.
        assert_eq!(met, [true, true, true, true, true]);
        assert!(t[0].figure.contains("×2.50"), "{}", t[0].figure);
    }

    #[test]
    fn each_workload_has_its_table_latencies_and_plot() {
        let mut m = String::new();
        section(&mut m, &results());
        assert!(m.contains("### Uniform wallets") && m.contains("### Hot pair"));
        // The ceiling's calls carry sixteen transfers each: 100 calls/s are 1600 tx/s.
        assert!(m.contains("| 16 | 1000 | 0.50 | 2.00 | 7.5 | 100 | 0.75 | 3.00 | 400 | 800 | 1600 | ×2.50 | ×1.25 | ×10.00 | ×4.00 |"), "{m}");
        assert!(
            m.contains("| 1 | 0.90 | n/a | 1.00 | 0.90 | n/a | 1.00 | n/a | n/a | n/a |"),
            "{m}"
        );
        assert!(
            m.contains("| 16 | 0.90 | n/a | 1.00 | 0.90 | n/a | 1.00 | 0.90 | n/a | 1.00 |"),
            "{m}"
        );
        assert!(m.contains("| n/a | 100 |"), "no batch taken is n/a");
        let dir = std::env::temp_dir().join(format!("waiaas-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        plot(&dir.join("t.svg"), "hot pair", &results().hot_pair).unwrap();
        let svg = std::fs::read_to_string(dir.join("t.svg")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(svg.contains("PL/pgSQL"));
    }

    #[test]
    fn results_written_before_batching_still_render_without_transfers() {
        let old = r#"{"date":"d","command":"c","quick":false,
            "machine":{"cpus":2,"postgres":"p","redis":"r"},
            "transfers":[{"concurrency":1,"service":{},"pgbench_tps":1.0,"ratio":1.0}],
            "reads":null,"http":null,"redis_down":null,"growth":null}"#;
        let r: Results = serde_json::from_str(old).unwrap();
        assert!(r.transfers.is_none());
        let mut new: Results = serde_json::from_str(old).unwrap();
        new.transfers = Some(results());
        let again: Results = serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(again.transfers.map(|t| t.hot_pair.len()), Some(2));
    }
}
