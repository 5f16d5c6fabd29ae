//! The tamper-evident ledger: the sealer seals every transaction, ledger entry and audit row
//! exactly once, in an order a late commit cannot break; `verify` names the first row that
//! was edited, deleted, reordered or slipped in; the ledger, the audit trail and the events
//! refuse to be rewritten, whoever asks.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use waiaas_migration::{Migrator, MigratorTrait as _};
use waiaas_postgres::chain;
use waiaas_testkit::{Fixture, PgServer, TestDb, services, tamper, text_of};

async fn seal_all(db: &DatabaseConnection, batch: u32) -> u64 {
    let mut total = 0;
    loop {
        let n = chain::seal(db, batch).await.unwrap();
        total += n;
        if n == 0 {
            return total;
        }
    }
}

async fn problem(db: &DatabaseConnection) -> String {
    let report = chain::verify(db, None).await.unwrap();
    assert!(!report.is_intact(), "verify missed it: {report}");
    report.problem.unwrap()
}

async fn private() -> (PgServer, DatabaseConnection) {
    let server = PgServer::start(&[]).await.expect("a private PostgreSQL");
    let url = server.migrated_database("chain").await.unwrap();
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    (server, db)
}

const ROWS: &str = "SELECT ((SELECT count(*) FROM transactions) + (SELECT count(*) FROM ledger_entries) \
+ (SELECT count(*) FROM audit_logs))::text AS v";

#[tokio::test]
async fn verify_names_an_edited_amount_a_deleted_entry_two_rows_reordered_and_a_row_slipped_in() {
    // A private server: the sealer waits for every transaction running in the cluster,
    // and other tests' would make what it seals here depend on their timing.
    let (_server, db) = private().await;
    let services = services(&waiaas_postgres::Postgres::new(db.clone()));
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 100).await.id;
    let b = world.wallet("USD", 0).await.id;
    let mut last = None;
    for _ in 0..5 {
        last = Some(world.spend(a, b, 3).await);
    }
    // Small batches: the chain runs on across them.
    let sealed = seal_all(&db, 7).await;
    assert_eq!(
        sealed.to_string(),
        text_of(&db, ROWS).await,
        "every row sealed once"
    );
    let report = chain::verify(&db, None).await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.checked, sealed);
    let head = chain::head(&db).await.unwrap();
    assert_eq!(u64::try_from(head.position).unwrap(), sealed);
    assert_eq!(head, report.head);

    // More postings: a verify from the published head recomputes only what came after it.
    world.spend(a, b, 1).await;
    let more = seal_all(&db, 1_000).await;
    assert!(
        more >= 3,
        "a transfer, its two entries and its audit row: {more}"
    );
    let from = chain::verify(&db, Some((head.position, head.hash)))
        .await
        .unwrap();
    assert!(from.is_intact(), "{from}");
    assert_eq!(from.checked, more);
    let wrong = chain::verify(&db, Some((head.position, [7; 32])))
        .await
        .unwrap();
    assert!(
        wrong
            .problem
            .as_deref()
            .unwrap_or_default()
            .contains("checkpoint"),
        "{wrong}"
    );

    // An amount edited.
    let t = last.unwrap().transaction.id;
    let entry = text_of(
        &db,
        &format!("SELECT min(id)::text AS v FROM ledger_entries WHERE transaction_id = '{t}'"),
    )
    .await;
    tamper(
        &db,
        &format!("UPDATE ledger_entries SET amount = amount * 2 WHERE id = {entry}"),
    )
    .await;
    let p = problem(&db).await;
    assert!(
        p.contains(&format!("ledger_entry {entry} does not match its seal")),
        "{p}"
    );
    tamper(
        &db,
        &format!("UPDATE ledger_entries SET amount = amount / 2 WHERE id = {entry}"),
    )
    .await;
    assert!(chain::verify(&db, None).await.unwrap().is_intact());

    // An entry deleted.
    tamper(
        &db,
        &format!(
            "CREATE TABLE saved AS SELECT * FROM ledger_entries WHERE id = {entry}; \
             DELETE FROM ledger_entries WHERE id = {entry}"
        ),
    )
    .await;
    let p = problem(&db).await;
    assert!(
        p.contains(&format!("ledger_entry {entry} is missing")),
        "{p}"
    );
    tamper(
        &db,
        "INSERT INTO ledger_entries OVERRIDING SYSTEM VALUE SELECT * FROM saved; DROP TABLE saved",
    )
    .await;
    assert!(chain::verify(&db, None).await.unwrap().is_intact());

    // Two rows reordered in the chain (positions 5 and 6, in the first seal of seven).
    let at = 5;
    tamper(
        &db,
        &format!(
            "UPDATE ledger_chain SET row_ids[{i}] = row_ids[{i} + 1], row_ids[{i} + 1] = row_ids[{i}], \
             row_kinds[{i}] = row_kinds[{i} + 1], row_kinds[{i} + 1] = row_kinds[{i}] \
             WHERE position > {at} AND position - cardinality(row_ids) < {at}",
            i = format!("({at} - position + cardinality(row_ids))")
        ),
    )
    .await;
    let p = problem(&db).await;
    assert!(p.starts_with(&format!("position {at}: ")), "{p}");
    tamper(
        &db,
        &format!(
            "UPDATE ledger_chain SET row_ids[{i}] = row_ids[{i} + 1], row_ids[{i} + 1] = row_ids[{i}], \
             row_kinds[{i}] = row_kinds[{i} + 1], row_kinds[{i} + 1] = row_kinds[{i}] \
             WHERE position > {at} AND position - cardinality(row_ids) < {at}",
            i = format!("({at} - position + cardinality(row_ids))")
        ),
    )
    .await;
    assert!(chain::verify(&db, None).await.unwrap().is_intact());

    // An audit row slipped in among the sealed ones (an old transaction id).
    tamper(
        &db,
        "INSERT INTO audit_logs (id, actor_type, action, resource_type, resource_id, xid) \
         VALUES (gen_random_uuid(), 'system', 'wallet.drain', 'wallet', 'x', '2')",
    )
    .await;
    let p = problem(&db).await;
    assert!(p.contains("audit_logs: "), "{p}");
}

/// Seals the first `most` rows as the sealer did before migration 18: one chain row each,
/// `hash = SHA-256(previous ‖ kind ‖ 0 ‖ encoding)`.
async fn seal_one_by_one(db: &DatabaseConnection, most: usize) -> usize {
    let mut rows: Vec<(i64, i16, i64, String, chain::Kind, String)> = Vec::new();
    for (rank, kind, table) in [
        (1, chain::Kind::Transaction, "transactions"),
        (2, chain::Kind::LedgerEntry, "ledger_entries"),
        (3, chain::Kind::AuditLog, "audit_logs"),
    ] {
        let sql = format!(
            "SELECT x.xid, x.id::text AS id, {} AS body FROM {table} x",
            kind.body()
        );
        for r in db
            .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap()
        {
            let xid: i64 = r.try_get("", "xid").unwrap();
            let id: String = r.try_get("", "id").unwrap();
            let body: String = r.try_get("", "body").unwrap();
            let number = if rank == 2 { id.parse().unwrap() } else { 0 };
            rows.push((xid, rank, number, id, kind, body));
        }
    }
    rows.sort_by(|a, b| (a.0, a.1, a.2, &a.3).cmp(&(b.0, b.1, b.2, &b.3)));
    rows.truncate(most);
    let mut prev = [0u8; 32];
    for (i, (_, _, _, id, kind, body)) in rows.iter().enumerate() {
        prev = chain::link(&prev, *kind, body);
        db.execute_unprepared(&format!(
            "INSERT INTO ledger_chain (position, kind, row_id, hash) VALUES ({}, '{}', '{id}', '\\x{}')",
            i + 1,
            kind.name(),
            hex::encode(prev)
        ))
        .await
        .unwrap();
    }
    let (xid, rank, _, id, _, _) = rows.last().unwrap();
    db.execute_unprepared(&format!(
        "UPDATE ledger_chain_head SET position = {}, hash = '\\x{}', cursor_xid = {xid}, \
         cursor_kind = {rank}, cursor_id = '{id}', sealed_at = now() WHERE id = 1",
        rows.len(),
        hex::encode(prev)
    ))
    .await
    .unwrap();
    rows.len()
}

#[tokio::test]
async fn a_chain_sealed_row_by_row_before_migration_18_runs_on_in_seals_of_many_rows() {
    let (_server, db) = private().await;
    Migrator::down(&db, Some(1))
        .await
        .expect("back before migration 18");
    let services = services(&waiaas_postgres::Postgres::new(db.clone()));
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 100).await.id;
    let b = world.wallet("USD", 0).await.id;
    let mut last = None;
    for _ in 0..3 {
        last = Some(world.spend(a, b, 3).await);
    }
    let total: usize = text_of(&db, ROWS).await.parse().unwrap();
    // All but the last transfer's rows, one by one, as the sealer of migration 16 did.
    let old = seal_one_by_one(&db, total - 4).await;
    Migrator::up(&db, None)
        .await
        .expect("migration 18 over a chain");
    for _ in 0..2 {
        world.spend(a, b, 1).await;
    }
    let sealed = seal_all(&db, 5).await;
    let now: u64 = text_of(&db, ROWS).await.parse().unwrap();
    assert_eq!(
        u64::try_from(old).unwrap() + sealed,
        now,
        "every row sealed once"
    );
    assert_eq!(
        text_of(
            &db,
            &format!("SELECT count(*)::text AS v FROM ledger_chain WHERE position > {old}")
        )
        .await,
        sealed.div_ceil(5).to_string(),
        "one chain row per seal of up to five"
    );
    let report = chain::verify(&db, None).await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.checked, now);
    assert_eq!(u64::try_from(report.head.position).unwrap(), now);

    // A row sealed alone, before the migration, is still held to its seal.
    let t = last.unwrap().transaction.id;
    let first_entry: String = text_of(
        &db,
        &format!("SELECT min(id)::text AS v FROM ledger_entries WHERE transaction_id <> '{t}'"),
    )
    .await;
    tamper(
        &db,
        &format!("UPDATE ledger_entries SET amount = amount + 1 WHERE id = {first_entry}"),
    )
    .await;
    let p = problem(&db).await;
    assert!(
        p.contains(&format!(
            "ledger_entry {first_entry} does not match its seal"
        )),
        "{p}"
    );
    tamper(
        &db,
        &format!("UPDATE ledger_entries SET amount = amount - 1 WHERE id = {first_entry}"),
    )
    .await;
    // And so is one sealed in a seal of many, after it.
    let newest = text_of(&db, "SELECT max(id)::text AS v FROM ledger_entries").await;
    tamper(
        &db,
        &format!("UPDATE ledger_entries SET amount = amount + 1 WHERE id = {newest}"),
    )
    .await;
    let p = problem(&db).await;
    assert!(
        p.contains(&format!("ledger_entry {newest} does not match its seal")),
        "{p}"
    );
    tamper(
        &db,
        &format!("UPDATE ledger_entries SET amount = amount - 1 WHERE id = {newest}"),
    )
    .await;
    // Two rows of a seal swapped together with their own hashes: each row still matches
    // its hash, the seal's link does not.
    tamper(
        &db,
        &format!(
            "UPDATE ledger_chain SET row_ids[1] = row_ids[2], row_ids[2] = row_ids[1], \
             row_kinds[1] = row_kinds[2], row_kinds[2] = row_kinds[1], \
             row_hashes = substring(row_hashes from 33 for 32) || substring(row_hashes from 1 for 32) \
             || substring(row_hashes from 65) \
             WHERE position = (SELECT min(position) FROM ledger_chain WHERE position > {old})"
        ),
    )
    .await;
    let p = problem(&db).await;
    assert!(
        p.contains(&format!("the seal of positions {} to", old + 1))
            && p.contains("does not match its hash"),
        "{p}"
    );
}

#[tokio::test]
async fn a_row_that_commits_late_is_sealed_in_its_place_never_skipped() {
    // A private server: the sealer waits for every transaction running in the cluster,
    // and other tests' would make what it seals here depend on their timing.
    let (_server, db) = private().await;
    let services = services(&waiaas_postgres::Postgres::new(db.clone()));
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 100).await.id;
    let b = world.wallet("USD", 0).await.id;
    seal_all(&db, 100).await;
    let before = chain::head(&db).await.unwrap();

    // A transaction takes its id, writes an audit row and stays open while transfers commit.
    let slow = db.begin().await.unwrap();
    let late = uuid::Uuid::new_v4();
    slow.execute_unprepared(&format!(
        "INSERT INTO audit_logs (id, actor_type, action, resource_type, resource_id) \
         VALUES ('{late}', 'system', 'test.slow', 'test', 'slow')"
    ))
    .await
    .unwrap();
    for _ in 0..3 {
        world.spend(a, b, 1).await;
    }
    assert_eq!(
        seal_all(&db, 100).await,
        0,
        "nothing written after the open transaction began is sealed while it runs"
    );
    slow.commit().await.unwrap();
    let sealed = seal_all(&db, 2).await;
    assert!(sealed >= 13, "the late row and three transfers: {sealed}");
    let report = chain::verify(&db, None).await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(
        text_of(
            &db,
            &format!(
                "SELECT (position - cardinality(row_ids) + array_position(row_ids, '{late}'))::text AS v \
                 FROM ledger_chain WHERE '{late}' = ANY (row_ids)"
            )
        )
        .await,
        (before.position + 1).to_string(),
        "the late row comes first: its transaction began before the transfers'"
    );
}

#[tokio::test]
async fn the_ledger_the_audit_trail_the_events_and_the_chain_refuse_rewrites_from_anyone() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 100).await.id;
    let b = world.wallet("USD", 0).await.id;
    world.spend(a, b, 3).await;
    seal_all(&db.db, 100).await;
    // The tests connect as the superuser: even it is refused.
    for sql in [
        "UPDATE ledger_entries SET amount = amount",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_entries CASCADE",
        "UPDATE audit_logs SET action = 'nothing'",
        "DELETE FROM audit_logs",
        "UPDATE events SET type = 'transaction.forged'",
        "UPDATE events SET seq = NULL",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE ledger_chain SET hash = hash",
        "DELETE FROM ledger_chain",
    ] {
        let e = db
            .db
            .execute_unprepared(sql)
            .await
            .expect_err(sql)
            .to_string();
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    // The relay still places events once, and retention still deletes old ones through its
    // function.
    assert_eq!(
        text_of(
            &db.db,
            "SELECT count(*)::text AS v FROM events WHERE seq IS NULL"
        )
        .await,
        text_of(&db.db, "SELECT count(*)::text AS v FROM events").await,
        "nothing placed yet"
    );
    db.db
        .execute_unprepared("UPDATE events SET seq = nextval('event_seq') WHERE seq IS NULL")
        .await
        .expect("placing events");
    assert_eq!(
        text_of(
            &db.db,
            "SELECT (delete_events_before(now() + interval '1 minute', 1000) = count(*))::text AS v FROM events"
        )
        .await,
        "true"
    );
    assert_eq!(
        text_of(&db.db, "SELECT count(*)::text AS v FROM events").await,
        "0"
    );
    let e = db
        .db
        .execute_unprepared(
            "SELECT set_config('waiaas.events_retention', 'on', false); DELETE FROM audit_logs",
        )
        .await
        .expect_err("the retention flag opens events only")
        .to_string();
    assert!(e.contains("append-only"), "{e}");
}
