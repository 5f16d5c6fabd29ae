//! The service behind PgBouncer in transaction mode (`database.pooler =
//! "pgbouncer-transaction"`): a real `pgbouncer` started by the test, two server connections
//! for the instance's pool of six, and the whole walkthrough over real HTTP.

use waiaas_testkit::{PgBouncer, TestDb};
use waiaas_tests::{Options, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_walkthrough_runs_behind_pgbouncer_in_transaction_mode() {
    let db = TestDb::new().await;
    let bouncer = PgBouncer::start(&db.url, 2).await.expect("pgbouncer");
    let mut settings = TestApp::settings_for(&bouncer.url(&db.url), &Options::default());
    settings.database.pooler = waiaas_postgres::Pooler::PgbouncerTransaction;
    let app = TestApp::spawn_with(settings.clone()).await;
    // Reconciliation goes through the pooler too.
    crate::walkthrough::walk(&app, &settings).await;
    app.stop().await;
    assert!(
        !bouncer.log().contains("prepared statement"),
        "{}",
        bouncer.log()
    );
}
