//! The `waiaas` binary itself: `serve` creates and migrates a missing database, answers, runs
//! degraded without Redis, and stops cleanly on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;

/// The binary built next to this test executable.
fn binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target dir");
    let bin = dir.join("waiaas");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace (cargo build --workspace)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn serve_creates_its_database_runs_without_redis_and_stops_on_sigterm() {
    let admin = waiaas_testkit::admin_url()
        .await
        .expect("test database server");
    let name = format!("waiaas_t_{}", uuid::Uuid::new_v4().simple());
    let url = waiaas_testkit::with_database(&admin, &name);
    let port = free_port();
    let dead_redis = free_port();
    let mut child = tokio::process::Command::new(binary())
        .arg("serve")
        .env("WAIAAS__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("WAIAAS__DATABASE__URL", &url)
        .env("WAIAAS__DATABASE__MIN_CONNECTIONS", "0")
        .env("WAIAAS__DATABASE__MAX_CONNECTIONS", "3")
        .env(
            "WAIAAS__REDIS__URL",
            format!("redis://127.0.0.1:{dead_redis}"),
        )
        .env("WAIAAS_CONFIG_DIR", "/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("waiaas serve");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let ready = loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "serve never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");

    let pid = i32::try_from(child.id().expect("pid")).unwrap();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("stops within the grace period")
        .unwrap();
    assert!(exit.success(), "{exit:?}");

    let drop = tokio::process::Command::new("psql")
        .args([
            admin.as_str(),
            "-qc",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ])
        .status()
        .await
        .unwrap();
    assert!(
        drop.success(),
        "the database serve created exists and can be dropped"
    );
}
