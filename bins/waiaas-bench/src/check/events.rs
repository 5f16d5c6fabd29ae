//! Events under the faults. A follower reads the outbox after its cursor all along, as a
//! resuming client does, each instance's live feed is listened to while the instance lives,
//! and a webhook receiver (which refuses one request in ten) gets the owner's events. After
//! the run: every transaction change, policy change, key issued or revoked and session
//! revocation has exactly one event and every event a place; the follower read every placed
//! event exactly once, in order (no event was placed below one already read, whatever
//! failed); every live feed delivered, while its instance lived, exactly the events between
//! the first and the last it delivered; and the receiver accepted every event placed after
//! its endpoint was registered, each wallet's in order.

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
    receiver: Receiver,
}

/// The webhook receiver: every request it accepted (event id, wallet), in arrival order.
#[derive(Clone)]
struct Receiver {
    accepted: Arc<std::sync::Mutex<Vec<(i64, String)>>>,
    requests: Arc<std::sync::atomic::AtomicU64>,
    /// Events placed up to here were placed before the endpoint existed.
    from: i64,
}

impl Receiver {
    /// Starts a receiver on loopback and registers it as a webhook of the owner, before any
    /// load: every event placed from then on must reach it.
    async fn start(run: &Run) -> anyhow::Result<Self> {
        let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (a, n) = (accepted.clone(), requests.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (accepted, requests) = (a.clone(), n.clone());
                async move {
                    // One in ten refused: the retries are part of what is checked.
                    if requests.fetch_add(1, Ordering::SeqCst) % 10 == 3 {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
                        return axum::http::StatusCode::BAD_REQUEST;
                    };
                    let id = v["id"].as_i64().unwrap_or(-1);
                    let wallet = v["data"]["wallet_id"].as_str().unwrap_or("").to_owned();
                    accepted
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((id, wallet));
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let app = run.env.instance(1);
        app.services
            .create_webhook(
                &waiaas_domain::Principal::Owner {
                    owner_id: run.env.owner,
                },
                waiaas_domain::services::WebhookRequest {
                    url: format!("http://{addr}/hook"),
                    events: vec!["*".to_owned()],
                    description: Some("the consistency checker".to_owned()),
                },
                &waiaas_domain::AuditContext::system(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("registering the checker's webhook: {e}"))?;
        // Once nothing is left unplaced, every later placement sees the endpoint.
        for _ in 0..100 {
            if run
                .env
                .scalar("SELECT count(*)::bigint AS n FROM events WHERE seq IS NULL")
                .await?
                == 0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let from = run
            .env
            .scalar("SELECT COALESCE(max(seq), 0)::bigint AS n FROM events")
            .await?;
        Ok(Self {
            accepted,
            requests,
            from,
        })
    }

    fn accepted(&self) -> Vec<(i64, String)> {
        self.accepted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Registers the webhook receiver, then starts the follower and one live listener per
/// instance slot. Call before any load.
///
/// # Errors
/// When the receiver cannot be started or registered.
pub(super) async fn start(run: &Arc<Run>) -> anyhow::Result<Watch> {
    let receiver = Receiver::start(run).await?;
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
    Ok(Watch {
        finish,
        head,
        follower,
        live,
        receiver,
    })
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
             (SELECT 1 FROM events WHERE transaction_id IS NOT NULL \
             GROUP BY transaction_id, type HAVING count(*) > 1) d",
        ),
        (
            "policies whose changes do not have one event each",
            "SELECT count(*)::bigint AS n FROM wallet_policies p LEFT JOIN \
             (SELECT from_wallet_id AS w, count(*) AS n FROM events WHERE subject = 'policy' \
             GROUP BY 1) e ON e.w = p.wallet_id WHERE COALESCE(e.n, 0) <> p.version",
        ),
        (
            "API keys whose creation and revocation do not have one event each",
            "SELECT count(*)::bigint AS n FROM api_keys k LEFT JOIN \
             (SELECT payload->>'id' AS id, count(*) FILTER (WHERE type = 'api_key.created') AS c, \
             count(*) FILTER (WHERE type = 'api_key.revoked') AS r FROM events \
             WHERE subject = 'api_key' GROUP BY 1) e ON e.id = k.id::text \
             WHERE COALESCE(e.c, 0) <> 1 \
             OR COALESCE(e.r, 0) <> CASE WHEN k.revoked_at IS NULL THEN 0 ELSE 1 END",
        ),
        (
            "sessions whose revocation does not have one event",
            "SELECT count(*)::bigint AS n FROM sessions s LEFT JOIN \
             (SELECT payload->>'id' AS id, count(*) AS n FROM events WHERE subject = 'session' \
             GROUP BY 1) e ON e.id = s.id::text \
             WHERE COALESCE(e.n, 0) <> CASE WHEN s.revoked_at IS NULL THEN 0 ELSE 1 END",
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
        for mut segment in segments {
            // Events placed after the head was read (an approval expiring since) are not in
            // `placed`: compare up to the head.
            segment.retain(|&s| s <= head);
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
    violations.extend(check_receiver(&watch.receiver, &placed).await);
    Ok((violations, u64::try_from(placed.len()).unwrap_or(u64::MAX)))
}

/// Waits (up to a minute: retries back off) until the receiver accepted every event placed
/// after it was registered, then checks that each wallet's arrived in order.
async fn check_receiver(receiver: &Receiver, placed: &[i64]) -> Vec<String> {
    let expected: std::collections::BTreeSet<i64> = placed
        .iter()
        .copied()
        .filter(|&s| s > receiver.from)
        .collect();
    let mut missing = expected.len();
    for _ in 0..600 {
        let got: std::collections::HashSet<i64> =
            receiver.accepted().iter().map(|(id, _)| *id).collect();
        missing = expected.iter().filter(|id| !got.contains(id)).count();
        if missing == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut violations = Vec::new();
    if missing > 0 {
        violations.push(format!(
            "the webhook receiver never accepted {missing} of {} events",
            expected.len()
        ));
    }
    // Each wallet's events in order: first arrivals only (a repeat is at-least-once).
    let mut last: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for (id, wallet) in receiver.accepted() {
        if !seen.insert(id) {
            continue;
        }
        let prev = last.insert(wallet.clone(), id);
        if prev.is_some_and(|p| p > id) {
            violations.push(format!(
                "the webhook receiver got event {id} of wallet {wallet} after {}",
                prev.unwrap_or_default()
            ));
        }
    }
    let requests = receiver.requests.load(Ordering::SeqCst);
    if requests == 0 && !expected.is_empty() {
        violations.push("the webhook receiver got no request".to_owned());
    }
    violations
}
