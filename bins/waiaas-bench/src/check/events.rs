//! Events under the faults. A follower reads the outbox after its cursor all along, as a
//! resuming client does, and each instance's live feed is listened to while the instance
//! lives. After the run: every transaction change has exactly one event and every event a
//! place; the follower read every placed event exactly once, in order (no event was placed
//! below one already read, whatever failed); and every live feed delivered, while its
//! instance lived, exactly the events between the first and the last it delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use sea_orm::ConnectionTrait as _;
use waiaas_domain::ports::EventLog as _;

use super::ops::Run;

/// The places a watcher saw (per segment for a live feed), and what it found wrong.
type Seen<T> = tokio::task::JoinHandle<(T, Vec<String>)>;

/// What the watchers collected.
pub(super) struct Watch {
    finish: Arc<AtomicBool>,
    head: Arc<AtomicI64>,
    follower: Seen<Vec<i64>>,
    live: Vec<Seen<Vec<Vec<i64>>>>,
}

/// Starts the follower and one live listener per instance slot.
pub(super) fn start(run: &Arc<Run>) -> Watch {
    let finish = Arc::new(AtomicBool::new(false));
    let head = Arc::new(AtomicI64::new(i64::MAX));
    let follower = {
        let (run, finish, head) = (run.clone(), finish.clone(), head.clone());
        tokio::spawn(async move { follow(&run, &finish, &head).await })
    };
    let live = (0..2)
        .map(|slot| {
            let (run, finish, head) = (run.clone(), finish.clone(), head.clone());
            tokio::spawn(async move { listen(&run, slot, &finish, &head).await })
        })
        .collect();
    Watch {
        finish,
        head,
        follower,
        live,
    }
}

/// Reads the outbox after its cursor until told to finish and it has read up to the head.
async fn follow(run: &Run, finish: &AtomicBool, head: &AtomicI64) -> (Vec<i64>, Vec<String>) {
    let log = waiaas_postgres::Postgres::new(run.env.admin.clone());
    let (mut seen, mut violations) = (Vec::new(), Vec::new());
    let mut cursor = 0;
    loop {
        let last_look = finish.load(Ordering::SeqCst);
        match log.after(cursor, None, 500).await {
            Ok(page) => {
                for e in &page {
                    if e.id <= cursor {
                        violations.push(format!("event {} read after {cursor}", e.id));
                    }
                    cursor = e.id;
                    seen.push(e.id);
                }
                if last_look && cursor >= head.load(Ordering::SeqCst) {
                    return (seen, violations);
                }
                if page.is_empty() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            // PostgreSQL is being faulted: a resuming client tries again.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Listens to the live feed of the instance in `slot`, one segment per instance (a crashed
/// instance is replaced) or per subscription (a listener that fell behind subscribes again).
async fn listen(
    run: &Run,
    slot: usize,
    finish: &AtomicBool,
    head: &AtomicI64,
) -> (Vec<Vec<i64>>, Vec<String>) {
    let (mut segments, mut violations) = (Vec::new(), Vec::new());
    loop {
        let app = run.env.instance(slot);
        let mut feed = app.services.ports().feed.live();
        let mut segment = Vec::new();
        let mut waited = Duration::ZERO;
        loop {
            tokio::select! {
                next = feed.next() => match next {
                    Some(e) => segment.push(e.id),
                    None => break,
                },
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    if run.env.instance(slot).instance != app.instance {
                        break;
                    }
                    if finish.load(Ordering::SeqCst) {
                        let target = head.load(Ordering::SeqCst);
                        if segment.last().is_some_and(|&l| l >= target) {
                            break;
                        }
                        waited += Duration::from_millis(200);
                        if waited > Duration::from_secs(10) {
                            violations.push(format!(
                                "the live feed of instance {slot} stopped at {:?}; the outbox is at {target}",
                                segment.last()
                            ));
                            break;
                        }
                    }
                }
            }
        }
        segments.push(segment);
        if finish.load(Ordering::SeqCst) {
            return (segments, violations);
        }
    }
}

/// Waits for every event to be placed, stops the watchers and checks what they saw against
/// PostgreSQL. Returns the violations and how many events there are.
pub(super) async fn verify(run: &Run, watch: Watch) -> anyhow::Result<(Vec<String>, u64)> {
    let env = &run.env;
    let mut violations = Vec::new();
    // The relays place what is left within a poll interval.
    let mut unplaced = 0;
    for _ in 0..100 {
        unplaced = env
            .scalar("SELECT count(*)::bigint AS n FROM events WHERE seq IS NULL")
            .await?;
        if unplaced == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if unplaced > 0 {
        violations.push(format!("{unplaced} committed events were never placed"));
    }
    let head = env
        .scalar("SELECT COALESCE(max(seq), 0)::bigint AS n FROM events")
        .await?;
    watch.head.store(head, Ordering::SeqCst);
    watch.finish.store(true, Ordering::SeqCst);
    let checks = [
        (
            "transactions without an event",
            "SELECT count(*)::bigint AS n FROM transactions t \
             WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.transaction_id = t.id)",
        ),
        (
            "changes with two events",
            "SELECT count(*)::bigint AS n FROM \
             (SELECT 1 FROM events GROUP BY transaction_id, type HAVING count(*) > 1) d",
        ),
        (
            "transactions whose last event is not their status",
            "SELECT count(*)::bigint AS n FROM transactions t WHERE \
             (SELECT e.type FROM events e WHERE e.transaction_id = t.id ORDER BY e.seq DESC LIMIT 1) \
             IS DISTINCT FROM CASE WHEN t.kind = 'hold' \
             THEN 'hold.' || CASE t.status WHEN 'held' THEN 'placed' ELSE t.status END \
             ELSE 'transaction.' || t.status END",
        ),
    ];
    for (what, sql) in checks {
        let n = env.scalar(sql).await?;
        if n > 0 {
            violations.push(format!("{what}: {n}"));
        }
    }

    // Changes made since (approvals expiring) are left out: everything up to the head.
    let (mut seen, v) = watch.follower.await?;
    seen.retain(|&s| s <= head);
    violations.extend(v);
    let placed = env
        .admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT seq FROM events WHERE seq <= {head} ORDER BY seq"),
        ))
        .await?
        .iter()
        .map(|r| r.try_get::<i64>("", "seq"))
        .collect::<Result<Vec<_>, _>>()?;
    if seen != placed {
        violations.push(format!(
            "the follower read {} events; {} are placed (first difference at {:?})",
            seen.len(),
            placed.len(),
            seen.iter().zip(&placed).position(|(a, b)| a != b)
        ));
    }
    let mut delivered = 0;
    for (slot, task) in watch.live.into_iter().enumerate() {
        let (segments, v) = task.await?;
        violations.extend(v);
        for segment in segments {
            let (Some(first), Some(last)) = (segment.first(), segment.last()) else {
                continue;
            };
            delivered += segment.len();
            let expected: Vec<i64> = placed
                .iter()
                .copied()
                .filter(|s| s >= first && s <= last)
                .collect();
            if segment != expected {
                violations.push(format!(
                    "the live feed of instance {slot} delivered {} events between {first} and {last}; {} were placed",
                    segment.len(),
                    expected.len()
                ));
            }
        }
    }
    if delivered == 0 && !placed.is_empty() {
        violations.push("no live feed delivered any event".to_owned());
    }
    Ok((violations, u64::try_from(placed.len()).unwrap_or(u64::MAX)))
}
