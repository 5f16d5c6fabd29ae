//! What the logs of a request hold: the request id on every line, the cause of an
//! unexpected failure, and never a credential.

use std::io;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;
use waiaas_domain::errors::PostingError;

use super::*;

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// Where this thread's log lines go, if anywhere.
    static SINK: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// The writer of the one global subscriber: each thread's lines go to that thread's sink.
/// A global subscriber (rather than one set for the test's thread only) is what every
/// callsite registers its interest with, so another test's thread cannot make this one's
/// spans invisible.
struct ThreadSink;

struct SinkWriter(Option<Captured>);

impl io::Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(c) = &mut self.0 {
            c.write(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ThreadSink {
    type Writer = SinkWriter;

    fn make_writer(&'a self) -> Self::Writer {
        SinkWriter(SINK.with(|s| s.borrow().clone()))
    }
}

/// Captures what this thread logs while `f` runs.
async fn capture<T>(f: impl std::future::Future<Output = T>) -> (T, Captured) {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(ThreadSink)
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
    let captured = Captured::default();
    SINK.with(|s| *s.borrow_mut() = Some(captured.clone()));
    let out = f.await;
    SINK.with(|s| *s.borrow_mut() = None);
    (out, captured)
}

#[tokio::test]
async fn every_log_line_has_the_request_id_and_none_has_a_credential() {
    let w = World::new();
    let mut m = Mocks::new(&w);
    m.transactions.expect_post_spend().returning(|_| {
        Err(PostingError::Unknown(
            anyhow::anyhow!("deadlock detected").context("posting the spend"),
        ))
    });
    let uri = format!("/v1/wallets/{}/transfers", w.wallet);
    let body = json!({"amount": 10, "destination": "iban:DE89370400440532013000"});
    let mut req = request("POST", &uri, Some(AGENT_KEY), Some(body));
    req.headers_mut()
        .insert("x-request-id", "req-log-1".parse().unwrap());
    req.headers_mut()
        .insert("idempotency-key", "k-log".parse().unwrap());

    let ((status, _, _), captured) = capture(send(m.app(), req)).await;

    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let logs = captured.text();
    assert!(
        logs.contains("posting the spend: deadlock detected"),
        "the cause chain is logged: {logs}"
    );
    assert!(logs.contains("ERROR"), "{logs}");
    for line in logs.lines() {
        assert!(
            line.contains("req-log-1"),
            "line without the request id: {line}"
        );
        assert!(!line.contains(AGENT_KEY), "credential in the logs: {line}");
    }
}
