//! Load generation: a closed loop (N workers, each starting its next operation when the
//! last one ends) and an open loop at a fixed rate (latency measured from the scheduled start,
//! so a stall is not hidden), with latency histograms and a progress bar.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// What one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStats {
    /// Concurrency (closed loop) or 0 (open loop).
    pub concurrency: usize,
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// Successful operations per second.
    pub throughput: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Largest latency, milliseconds.
    pub max_ms: f64,
}

/// Latencies in microseconds, from 1 µs to 60 s, 3 significant figures.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

fn bar(label: &str, duration: Duration, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(duration.as_millis().try_into().unwrap_or(u64::MAX));
    pb.set_style(
        ProgressStyle::with_template("{prefix:>40} [{bar:30}] {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(label.to_owned());
    pb
}

fn finish(
    concurrency: usize,
    hist: &Histogram<u64>,
    ok: u64,
    errors: u64,
    seconds: f64,
) -> RunStats {
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    RunStats {
        concurrency,
        ok,
        errors,
        seconds,
        throughput: ok as f64 / seconds.max(1e-9),
        p50_ms: if ok > 0 { ms(0.5) } else { 0.0 },
        p99_ms: if ok > 0 { ms(0.99) } else { 0.0 },
        max_ms: if ok > 0 {
            hist.max() as f64 / 1000.0
        } else {
            0.0
        },
    }
}

/// Runs `op` in `concurrency` workers for `duration`. `op` gets the worker number and the
/// operation number; an `Err` counts as an error (and is not in the latency histogram).
pub async fn closed_loop<F, Fut, E>(
    label: &str,
    concurrency: usize,
    duration: Duration,
    quiet: bool,
    op: F,
) -> RunStats
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display + Send,
{
    let op = Arc::new(op);
    let pb = bar(label, duration, quiet);
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut hist = histogram();
            let (mut ok, mut errors, mut n) = (0_u64, 0_u64, 0_u64);
            let mut last_error = None;
            while Instant::now() < deadline {
                let t = Instant::now();
                match op(w, n).await {
                    Ok(()) => {
                        ok += 1;
                        let _ = hist.record(micros(t.elapsed()));
                    }
                    Err(e) => {
                        errors += 1;
                        last_error = Some(e.to_string());
                    }
                }
                n += 1;
            }
            (hist, ok, errors, last_error)
        }));
    }
    let ticker = {
        let pb = pb.clone();
        tokio::spawn(async move {
            while Instant::now() < deadline {
                pb.set_position(start.elapsed().as_millis().try_into().unwrap_or(u64::MAX));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut hist = histogram();
    let (mut ok, mut errors) = (0, 0);
    for w in workers {
        if let Ok((h, o, e, last)) = w.await {
            let _ = hist.add(&h);
            ok += o;
            errors += e;
            if let Some(msg) = last {
                tracing::warn!(label, error = %msg, "Operations failed during the run");
            }
        }
    }
    ticker.abort();
    let stats = finish(
        concurrency,
        &hist,
        ok,
        errors,
        start.elapsed().as_secs_f64(),
    );
    pb.finish_with_message(format!(
        "{:.0}/s p99 {:.2} ms",
        stats.throughput, stats.p99_ms
    ));
    stats
}

/// Starts `op` at a fixed `rate` per second for `duration`, whatever the latency; latency is
/// measured from each operation's scheduled start.
pub async fn open_loop<F, Fut, E>(
    label: &str,
    rate: f64,
    duration: Duration,
    quiet: bool,
    op: F,
) -> RunStats
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send,
{
    let pb = bar(label, duration, quiet);
    let hist = Arc::new(Mutex::new(histogram()));
    let counts = Arc::new((
        std::sync::atomic::AtomicU64::new(0),
        std::sync::atomic::AtomicU64::new(0),
    ));
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let total = (duration.as_secs_f64() * rate) as u64;
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for n in 0..total {
        let scheduled = start + interval.mul_f64(n as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let (fut, hist, counts) = (op(n), hist.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            match fut.await {
                Ok(()) => {
                    counts.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = hist.lock().await.record(micros(scheduled.elapsed()));
                }
                Err(_) => {
                    counts.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
        if n % 64 == 0 {
            pb.set_position(start.elapsed().as_millis().try_into().unwrap_or(u64::MAX));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let hist = hist.lock().await;
    let ok = counts.0.load(std::sync::atomic::Ordering::Relaxed);
    let errors = counts.1.load(std::sync::atomic::Ordering::Relaxed);
    let stats = finish(0, &hist, ok, errors, start.elapsed().as_secs_f64());
    pb.finish_with_message(format!(
        "{:.0}/s p99 {:.2} ms",
        stats.throughput, stats.p99_ms
    ));
    stats
}
